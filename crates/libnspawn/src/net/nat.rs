//! Outbound masquerading and `--port` forwards, in an nftables table of the
//! machine's own (`inet nspawn-NAME`), so that removing it cannot touch the
//! user's rules or another machine's; and IPv4 forwarding, turned on only
//! while machines with addresses of ours run.
//!
//! Through the `nft` binary with a `-f -` script: the netlink nftables
//! crates are either bindings to libnftnl (a C library and its headers to
//! build against) or unmaintained, and the rule set is written once per
//! start and deleted as a whole, so a subprocess there costs little.

use super::addr::Subnet;
use super::spec::{Port, Proto};
use crate::error::{Context, Error, Result};
use std::io::Write;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

const FORWARD: &str = "/proc/sys/net/ipv4/ip_forward";
/// Present while IPv4 forwarding is on because we turned it on.
const FORWARD_MARK: &str = "/run/nspawn/ip_forward";

pub fn table(machine: &str) -> String {
    format!("nspawn-{machine}")
}

/// The machine's rules: its traffic to anywhere but its own subnet leaves
/// with the host's address; each port forward is a DNAT for traffic that
/// arrives (prerouting) or is made here (output) for a local address,
/// 127.0.0.1 included, which then needs masquerading to come back.
pub fn script(machine: &str, ip: Ipv4Addr, subnet: Subnet, ports: &[Port]) -> String {
    let mut dnat = String::new();
    for p in ports {
        let proto = match p.proto {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        };
        dnat.push_str(&format!(
            "    fib daddr type local {proto} dport {} dnat ip to {ip}:{}\n",
            p.host, p.container
        ));
    }
    format!(
        "table inet {t} {{
  chain postrouting {{
    type nat hook postrouting priority srcnat; policy accept;
    ip saddr {ip} ip daddr != {subnet} masquerade
    ip saddr 127.0.0.0/8 ip daddr {ip} masquerade
  }}
  chain prerouting {{
    type nat hook prerouting priority dstnat; policy accept;
{dnat}  }}
  chain output {{
    type nat hook output priority -100; policy accept;
{dnat}  }}
}}
",
        t = table(machine)
    )
}

/// Whether an `nft` program is on the search path.
fn nft_present() -> bool {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path).any(|d| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(d.join("nft"))
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

/// An `nft` started, to wait for.
pub struct Pending {
    child: std::process::Child,
    what: String,
}

impl Pending {
    /// Wait for it; its first line of error if it failed.
    pub fn wait(self) -> Result<()> {
        let out = self
            .child
            .wait_with_output()
            .ctx(|| "cannot run nft".into())?;
        if out.status.success() {
            return Ok(());
        }
        let err = String::from_utf8_lossy(&out.stderr);
        let first = err.lines().next().unwrap_or("failed");
        Err(Error::invalid(format!("nft {}: {first}", self.what)))
    }
}

/// Start `nft` with `args`, `input` on its stdin. `hold`: a lock it
/// inherits and holds until it has exited (the network record's, which a
/// killed runner's reaper waits for: an `nft` still installing the table
/// must be done before the reaper removes it).
fn nft_start(args: &[&str], input: Option<&str>, hold: Option<BorrowedFd>) -> Result<Pending> {
    let mut c = Command::new("nft");
    if let Some(fd) = hold.map(|f| f.as_raw_fd()) {
        // SAFETY: only fcntl(2) between fork and exec.
        unsafe {
            c.pre_exec(move || {
                if libc::fcntl(fd, libc::F_SETFD, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    c.args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = c
        .spawn()
        .ctx(|| "cannot run nft".into())
        .map_err(Error::from_fork)?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin
            .write_all(text.as_bytes())
            .ctx(|| "cannot write to nft".into())?;
    }
    Ok(Pending {
        child,
        what: args.join(" "),
    })
}

/// Start installing the machine's table (an `nft` that holds `hold`
/// until it is done), while the runner goes on with the start; `None`
/// without `nft`, where only `--port` is refused.
pub fn install_start(
    machine: &str,
    ip: Ipv4Addr,
    subnet: Subnet,
    ports: &[Port],
    hold: BorrowedFd,
) -> Result<Option<Pending>> {
    if !nft_present() {
        // Links and addresses work without it; only the way out and the
        // forwarded ports need the table.
        if !ports.is_empty() {
            return Err(Error::invalid(
                "--port needs nft (install nftables)".to_string(),
            ));
        }
        eprintln!(
            "nspawn: nft not found: {machine}'s network is not masqueraded (install nftables)"
        );
        return Ok(None);
    }
    remove(machine);
    nft_start(
        &["-f", "-"],
        Some(&script(machine, ip, subnet, ports)),
        Some(hold),
    )
    .map(Some)
}

/// Wait for the table `install_start` began; `route_localnet_on` is the
/// host end, where forwarded connections from 127.0.0.1 leave.
pub fn install_finish(
    pending: Option<Pending>,
    ports: &[Port],
    route_localnet_on: &str,
) -> Result<()> {
    if let Some(p) = pending {
        p.wait()?;
    }
    if !ports.is_empty() {
        // The kernel drops 127/8 sources routed out of a non-loopback link
        // unless the link allows it (ip-sysctl.txt, route_localnet).
        let p = format!("/proc/sys/net/ipv4/conf/{route_localnet_on}/route_localnet");
        std::fs::write(&p, "1").ctx(|| format!("cannot write {p}"))?;
    }
    Ok(())
}

/// Start removing the machine's table, if there is one (or the kernel
/// cannot tell). Removing a table with base chains takes the kernel
/// 15 ms or so (the hooks go after an RCU grace period): the runner
/// removes its links meanwhile.
pub fn remove_start(machine: &str) -> Option<Pending> {
    let t = table(machine);
    if super::nftq::table_exists(&t) == Some(false) {
        return None;
    }
    nft_start(&["delete", "table", "inet", &t], None, None).ok()
}

/// Remove the machine's table, if there is one.
pub fn remove(machine: &str) {
    if let Some(p) = remove_start(machine) {
        let _ = p.wait();
    }
}

/// Turn IPv4 forwarding on unless it is; remember that we did. The caller
/// holds the network lock.
pub fn forwarding_on() -> Result<()> {
    let on = std::fs::read_to_string(FORWARD).ctx(|| format!("cannot read {FORWARD}"))?;
    if on.trim() == "1" {
        return Ok(());
    }
    std::fs::write(FORWARD_MARK, "").ctx(|| format!("cannot write {FORWARD_MARK}"))?;
    std::fs::write(FORWARD, "1").ctx(|| format!("cannot write {FORWARD}"))
}

/// Turn forwarding off again if we turned it on and `needed` is false. The
/// caller holds the network lock.
pub fn forwarding_release(needed: bool) {
    if needed || std::fs::metadata(FORWARD_MARK).is_err() {
        return;
    }
    let _ = std::fs::write(FORWARD, "0");
    let _ = std::fs::remove_file(FORWARD_MARK);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_are_the_machines_own() {
        let s = script(
            "web",
            Ipv4Addr::new(192, 168, 0, 2),
            Subnet::parse("192.168.0.0/28").unwrap(),
            &[Port {
                proto: Proto::Udp,
                host: 5353,
                container: 53,
            }],
        );
        assert!(s.starts_with("table inet nspawn-web {"));
        assert!(s.contains("ip saddr 192.168.0.2 ip daddr != 192.168.0.0/28 masquerade"));
        assert_eq!(
            s.matches("fib daddr type local udp dport 5353 dnat ip to 192.168.0.2:53")
                .count(),
            2
        );
    }
}
