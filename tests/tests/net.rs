//! Networking: links on both ends, bridges and zones, host interfaces,
//! namespaces, bad values, and what is left on the host afterwards.
//!
//! Every peer is on this machine: links we make, network namespaces the
//! test makes, or the containers themselves.

use nspawn_tests::*;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Names of the host's links.
fn host_links() -> Vec<String> {
    let out = Command::new("ip").args(["-o", "link"]).output().unwrap();
    parse_links(&stdout_of(&out.stdout))
}

fn stdout_of(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `ip -o link` lines to names ("2: host0@if9: <...>" -> "host0").
fn parse_links(s: &str) -> Vec<String> {
    s.lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap().to_string())
        .collect()
}

fn master_of(link: &str) -> Option<String> {
    std::fs::read_link(format!("/sys/class/net/{link}/master"))
        .ok()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
}

fn ip(args: &[&str]) {
    let st = Command::new("ip").args(args).status().unwrap();
    assert!(st.success(), "ip {args:?}");
}

/// A veth pair on the host, removed on drop (one end may be moved away).
struct HostVeth(String, String);

impl HostVeth {
    fn new(tag: &str) -> HostVeth {
        let n = std::process::id() % 10000;
        let (a, b) = (format!("nt{tag}{n}a"), format!("nt{tag}{n}b"));
        ip(&["link", "add", &a, "type", "veth", "peer", "name", &b]);
        HostVeth(a, b)
    }
}

impl Drop for HostVeth {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.0])
            .stderr(Stdio::null())
            .status();
    }
}

/// systemd 252 refuses host interfaces that udev has not initialized, and
/// this host runs no udev ("Network interface X is not initialized yet").
fn reference_needs_udev() -> bool {
    if reference() {
        eprintln!("the reference needs udev for host interfaces; skipped");
    }
    reference()
}

/// A container that writes its `ip -o link` to /links and then waits; the
/// test looks at the host meanwhile.
struct Running {
    child: Child,
    tree: std::path::PathBuf,
}

fn start(tree: &Tree, args: &[&str]) -> Running {
    let _ = std::fs::remove_file(tree.join("links"));
    let mut a = vec!["-q", "--pipe", "-D", tree.dir()];
    a.extend_from_slice(args);
    let m = marker();
    let script = format!("ip -o link > /links.tmp; mv /links.tmp /links; exec sleep {m}");
    a.extend_from_slice(&["/bin/sh", "-c", &script]);
    let mut c = nspawn(&a);
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let links = tree.join("links");
    let up = wait_until(Duration::from_secs(20), || {
        links.exists() || matches!(child.try_wait(), Ok(Some(_)))
    });
    assert!(up && links.exists(), "container did not start: {:?}", {
        let _ = child.kill();
        let o = child.wait_with_output().unwrap();
        (stdout_of(&o.stdout), stdout_of(&o.stderr))
    });
    Running {
        child,
        tree: tree.path.clone(),
    }
}

impl Running {
    fn inside(&self) -> Vec<String> {
        parse_links(&std::fs::read_to_string(self.tree.join("links")).unwrap())
    }

    /// End it as a user would (SIGTERM to the runner) and wait.
    fn stop(mut self) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let o = wait_output(
            std::mem::replace(&mut self.child, Command::new("true").spawn().unwrap()),
            Duration::from_secs(20),
        );
        let _ = o;
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn gone(link: &str) -> bool {
    wait_until(Duration::from_secs(5), || {
        !Path::new("/sys/class/net").join(link).exists()
    })
}

#[test]
fn veth_names_on_both_ends() {
    let t = Tree::busybox("veth");
    // 32 characters: the host end's name is shortened as the reference does.
    let r = start(&t, &["-n", "-M", "nettest-averyveryverylongname"]);
    assert_eq!(r.inside(), ["lo", "host0"]);
    assert!(host_links().contains(&"ve-nettest-WKBe".to_string()));
    r.stop();
    assert!(gone("ve-nettest-WKBe"));
    // Said as the reference says it, even with -q.
    let o = t.sh(&["-n", "-M", "nettest-averyveryverylongname"], "true");
    assert!(stderr(&o).contains(
        "Network interface name 've-nettest-averyveryverylongname' has been changed to 've-nettest-WKBe' to fit length constraints."
    ), "{}", stderr(&o));

    let name = format!("nv{}", std::process::id() % 100000);
    let r = start(&t, &["-n", "-M", &name]);
    assert!(host_links().contains(&format!("ve-{name}")));
    r.stop();
    assert!(gone(&format!("ve-{name}")));
}

#[test]
fn private_network_has_only_loopback_up() {
    let t = Tree::busybox("privnet");
    let out = ok(t.sh(&["--private-network"], "ip -o link"));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1, "{out}");
    assert!(
        lines[0].starts_with("1: lo: <LOOPBACK,UP,LOWER_UP>"),
        "{out}"
    );
}

#[test]
fn veth_extra_links() {
    let t = Tree::busybox("vextra");
    let n = std::process::id() % 10000;
    let (h1, c1, h2) = (format!("nxh{n}"), format!("nxc{n}"), format!("nxs{n}"));
    let r = start(
        &t,
        &[
            &format!("--network-veth-extra={h1}:{c1}"),
            &format!("--network-veth-extra={h2}"),
        ],
    );
    assert_eq!(r.inside(), ["lo".to_string(), c1, h2.clone()]);
    let host = host_links();
    assert!(host.contains(&h1) && host.contains(&h2), "{host:?}");
    r.stop();
    assert!(gone(&h1) && gone(&h2));
}

#[test]
fn bridge_membership_and_missing_bridge() {
    let t = Tree::busybox("bridge");
    let br = format!("ntbr{}", std::process::id() % 100000);
    ip(&["link", "add", &br, "type", "bridge"]);
    let name = format!("nb{}", std::process::id() % 100000);
    let r = start(&t, &["--network-bridge", &br, "-M", &name]);
    assert_eq!(r.inside(), ["lo", "host0"]);
    assert_eq!(
        master_of(&format!("vb-{name}")).as_deref(),
        Some(br.as_str())
    );
    r.stop();
    assert!(gone(&format!("vb-{name}")));
    assert!(
        Path::new("/sys/class/net").join(&br).exists(),
        "the user's bridge stays"
    );
    ip(&["link", "del", &br]);

    let o = t.sh(&["--network-bridge", &br, "-M", &name], "true");
    assert_eq!(o.status.code(), Some(1));
    if !reference() {
        assert_eq!(
            stderr(&o),
            format!("nspawn: cannot use bridge {br}: No such device\n")
        );
    }
    // The reference made the link before failing; it goes with the
    // namespace, a moment later.
    assert!(gone(&format!("vb-{name}")));
}

#[test]
fn zone_made_on_first_use_and_removed_with_last_member() {
    let t1 = Tree::busybox("zone1");
    let t2 = Tree::busybox("zone2");
    let zone = format!("z{}", std::process::id() % 100000);
    let br = format!("vz-{zone}");
    assert!(!host_links().contains(&br));
    let zarg = format!("--network-zone={zone}");
    let a = start(
        &t1,
        &[&zarg, "-M", &format!("za{}", std::process::id() % 100000)],
    );
    let b = start(
        &t2,
        &[&zarg, "-M", &format!("zb{}", std::process::id() % 100000)],
    );
    assert_eq!(a.inside(), ["lo", "host0"]);
    let members = std::fs::read_dir(format!("/sys/class/net/{br}/brif"))
        .unwrap()
        .count();
    assert_eq!(members, 2);
    a.stop();
    assert!(
        Path::new("/sys/class/net").join(&br).exists(),
        "one member left"
    );
    b.stop();
    assert!(gone(&br), "zone bridge {br} left behind");
}

#[test]
fn host_interface_moved_in_and_back() {
    if reference_needs_udev() {
        return;
    }
    let t = Tree::busybox("iface");
    let v = HostVeth::new("i");
    let r = start(&t, &[&format!("--network-interface={}", v.0)]);
    assert_eq!(r.inside(), ["lo".to_string(), v.0.clone()]);
    assert!(!host_links().contains(&v.0));
    r.stop();
    assert!(wait_until(Duration::from_secs(5), || host_links().contains(&v.0)));

    let r = start(&t, &[&format!("--network-interface={}:inner0", v.0)]);
    assert_eq!(r.inside(), ["lo", "inner0"]);
    r.stop();
    assert!(wait_until(Duration::from_secs(5), || host_links().contains(&v.0)));
}

#[test]
fn macvlan_on_a_host_interface() {
    if reference_needs_udev() {
        return;
    }
    let t = Tree::busybox("macvlan");
    let v = HostVeth::new("m");
    let r = start(&t, &[&format!("--network-macvlan={}", v.1)]);
    assert_eq!(r.inside(), ["lo".to_string(), format!("mv-{}", v.1)]);
    r.stop();
}

#[test]
fn joins_a_network_namespace() {
    let t = Tree::busybox("netns");
    let ns = format!("ntns{}", std::process::id());
    ip(&["netns", "add", &ns]);
    let v = HostVeth::new("n");
    ip(&["link", "set", &v.1, "netns", &ns]);
    let o = t.sh(
        &[&format!("--network-namespace-path=/run/netns/{ns}")],
        "ip -o link",
    );
    let _ = Command::new("ip").args(["netns", "del", &ns]).status();
    assert_eq!(parse_links(&ok(o)), ["lo".to_string(), v.1.clone()]);
}

#[test]
fn bad_values_fail_with_one_line_and_create_nothing() {
    let t = Tree::busybox("netbad");
    let name = format!("nbad{}", std::process::id() % 100000);
    for args in [
        &["-n", "--port="][..],
        &["-n", "--port=-1"],
        &["-n", "--port=:"],
        &["-n", "--port=icmp:80:8080"],
        &["-n", "--port=tcp::8080"],
        &["-n", "--port=8080:"],
        &["--port=80"],
        &["--network-bridge=br0", "--network-zone=z"],
        &["--network-namespace-path=/proc/self/ns/net", "-n"],
        &["--network-namespace-path=/nonexistent"],
        &["--network-namespace-path=/tmp"],
        &["--network-zone=averyveryverylongzone"],
        &["--network-interface=nosuch0"],
        &["--network-macvlan=nosuch0"],
        &["--network-veth-extra=a:b:c"],
    ] {
        let mut a = vec!["-M", name.as_str()];
        a.extend_from_slice(args);
        let o = t.sh(&a, "true");
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stderr(&o));
        if !reference() {
            let e = stderr(&o);
            assert!(
                e.starts_with("nspawn: ") && e.lines().count() == 1,
                "{args:?}: {e}"
            );
        }
        assert!(!machine_cgroup(&name).exists() || reference());
    }
    // Ours: forwards need an address we assign.
    if !reference() {
        let o = t.sh(&["-M", &name, "--private-network", "--port=80"], "true");
        assert_eq!(o.status.code(), Some(1));
        assert!(stderr(&o).contains("--port= needs -n or --network-zone="));
    }
    // Other tests make links meanwhile: look for ours only.
    let left: Vec<String> = host_links()
        .into_iter()
        .filter(|l| l.contains(&name) || l == "vz-z" || l == "vz-averyveryverylongzone")
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// Our record of a running machine's network (`/run/nspawn/net/NAME`).
fn record(machine: &str) -> Option<String> {
    std::fs::read_to_string(format!("/run/nspawn/net/{machine}")).ok()
}

fn record_value(machine: &str, key: &str) -> Option<String> {
    record(machine)?
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")).map(str::to_string))
}

/// Start `sh -c script` in the tree with `args`; returns once `ready`
/// (a file the script makes) exists.
fn start_script(tree: &Tree, args: &[&str], script: &str) -> Running {
    let _ = std::fs::remove_file(tree.join("links"));
    let mut a = vec!["-q", "--pipe", "-D", tree.dir()];
    a.extend_from_slice(args);
    let full = format!("{script} & ip -o link > /links.tmp; mv /links.tmp /links; wait");
    a.extend_from_slice(&["/bin/sh", "-c", &full]);
    let mut c = nspawn(&a);
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let links = tree.join("links");
    assert!(
        wait_until(Duration::from_secs(20), || links.exists()
            || matches!(child.try_wait(), Ok(Some(_)))),
        "container did not start"
    );
    Running {
        child,
        tree: tree.path.clone(),
    }
}

fn http_get(addr: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s =
        std::net::TcpStream::connect_timeout(&addr.parse().ok()?, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

#[test]
fn veth_container_gets_an_address_and_serves_the_host() {
    if ours_only() {
        return;
    }
    let t = Tree::busybox("httpd");
    let m = marker();
    std::fs::create_dir_all(t.join("www")).unwrap();
    std::fs::write(t.join("www/index.html"), format!("hello {m}\n")).unwrap();
    let name = format!("nh{}", std::process::id() % 100000);
    let r = start_script(&t, &["-n", "-M", &name], "httpd -f -p 80 -h /www");
    let ip = record_value(&name, "container_address").expect("no address recorded");
    let host_ip = record_value(&name, "host_address").unwrap();
    let mut page = None;
    assert!(wait_until(Duration::from_secs(10), || {
        page = http_get(&format!("{ip}:80"));
        page.is_some()
    }));
    assert!(page.unwrap().contains(&format!("hello {m}")));
    // The host end holds the gateway address, and IPv6 link-local is on.
    let o = Command::new("ip")
        .args(["-o", "addr", "show", &format!("ve-{name}")])
        .output()
        .unwrap();
    let addrs = stdout_of(&o.stdout);
    assert!(addrs.contains(&format!("inet {host_ip}/28")), "{addrs}");
    assert!(addrs.contains("inet6 fe80:"), "{addrs}");
    r.stop();
    assert!(record(&name).is_none(), "record left behind");
}

#[test]
fn zone_members_reach_each_other() {
    if ours_only() {
        return;
    }
    let t1 = Tree::busybox("zping1");
    let t2 = Tree::busybox("zping2");
    let p = std::process::id() % 100000;
    let zone = format!("--network-zone=p{p}");
    let (a, b) = (format!("zpa{p}"), format!("zpb{p}"));
    let ra = start(&t1, &[&zone, "-M", &a]);
    let ip_a = record_value(&a, "container_address").unwrap();
    let out = ok(t2.sh(&[&zone, "-M", &b], &format!("ping -c1 -W3 {ip_a}")));
    assert!(out.contains("1 packets received"), "{out}");
    ra.stop();
    assert!(gone(&format!("vz-p{p}")));
}

#[test]
fn concurrent_starts_get_distinct_subnets() {
    if ours_only() {
        return;
    }
    let trees: Vec<Tree> = (0..4).map(|i| Tree::busybox(&format!("conc{i}"))).collect();
    let p = std::process::id() % 100000;
    let names: Vec<String> = (0..4).map(|i| format!("nc{i}x{p}")).collect();
    let threads: Vec<_> = trees
        .iter()
        .zip(&names)
        .map(|(t, n)| {
            let mut c = nspawn(&[
                "-q",
                "--pipe",
                "-n",
                "-M",
                n,
                "-D",
                t.dir(),
                "/bin/sh",
                "-c",
                // All four run at once: none ends (and frees its
                // subnet) before every one has its own.
                "ip -o -4 addr show host0; while [ ! -e /go ]; do sleep 0.05; done",
            ]);
            c.stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            c.spawn().unwrap()
        })
        .collect();
    let all_up = wait_until(Duration::from_secs(20), || {
        names.iter().all(|n| record(n).is_some())
    });
    for t in &trees {
        std::fs::write(t.join("go"), "").unwrap();
    }
    assert!(all_up, "not all four containers started");
    let outs: Vec<String> = threads
        .into_iter()
        .map(|c| ok(wait_output(c, Duration::from_secs(30))))
        .collect();
    let mut addrs: Vec<String> = outs
        .iter()
        .map(|o| o.split_whitespace().nth(3).unwrap_or("").to_string())
        .collect();
    addrs.sort();
    addrs.dedup();
    assert_eq!(addrs.len(), 4, "{outs:?}");
    for n in &names {
        assert!(record(n).is_none());
    }
}

#[test]
fn sigkill_of_the_runner_leaves_nothing() {
    if ours_only() {
        return;
    }
    let t = Tree::busybox("netkill");
    let p = std::process::id() % 100000;
    let (name, zone) = (format!("nk{p}"), format!("k{p}"));
    let r = start(&t, &[&format!("--network-zone={zone}"), "-M", &name]);
    assert!(record(&name).is_some());
    assert!(host_links().contains(&format!("vz-{zone}")));
    // SAFETY: signalling our own child.
    assert!(nft_tables().contains(&format!("nspawn-{name}")));
    unsafe { libc::kill(r.child.id() as libc::pid_t, libc::SIGKILL) };
    assert!(gone(&format!("vb-{name}")));
    assert!(gone(&format!("vz-{zone}")), "zone bridge left behind");
    assert!(wait_until(Duration::from_secs(5), || record(&name).is_none()));
    assert!(!nft_tables().contains(&format!("nspawn-{name}")));
    drop(r);
    // Again, and the name is taken again at once: the new start waits for
    // the reaper to release the records and links.
    let mut r = start(&t, &[&format!("--network-zone={zone}"), "-M", &name]);
    // SAFETY: signalling our own child.
    unsafe { libc::kill(r.child.id() as libc::pid_t, libc::SIGKILL) };
    let _ = r.child.wait();
    let again = ok(t.sh(
        &[&format!("--network-zone={zone}"), "-M", &name],
        "ip -o link show host0",
    ));
    assert!(again.contains("host0"), "{again}");
    assert!(gone(&format!("vb-{name}")));
    assert!(wait_until(Duration::from_secs(5), || record(&name).is_none()));
}

#[test]
fn next_start_sweeps_stale_records() {
    if ours_only() {
        return;
    }
    let p = std::process::id() % 100000;
    let (stale, zone) = (format!("ns{p}"), format!("vz-s{p}"));
    // What a runner and reaper both killed with SIGKILL leave: an
    // unlocked record and its empty zone bridge.
    ip(&["link", "add", &zone, "type", "bridge"]);
    std::fs::create_dir_all("/run/nspawn/net").unwrap();
    // Whole when it appears: a concurrent start's sweep may read it at once.
    let tmp = format!("/run/nspawn/{stale}.tmp");
    std::fs::write(&tmp, format!("zone={zone}\nsubnet=192.168.200.0/24\n")).unwrap();
    std::fs::rename(&tmp, format!("/run/nspawn/net/{stale}")).unwrap();
    let t = Tree::busybox("sweep");
    ok(t.sh(&["-n", "-M", &format!("nw{p}")], "true"));
    assert!(record(&stale).is_none(), "stale record kept");
    assert!(gone(&zone), "stale zone bridge kept");
}

#[test]
fn dhcp_serves_the_configured_address() {
    if ours_only() {
        return;
    }
    let t = Tree::busybox("dhcp");
    let p = std::process::id() % 100000;
    for (args, name) in [
        (vec!["-n".to_string()], format!("nd{p}")),
        (vec![format!("--network-zone=d{p}")], format!("ndz{p}")),
    ] {
        let mut a: Vec<&str> = args.iter().map(String::as_str).collect();
        a.extend(["-M", name.as_str()]);
        // What a guest that configures itself does: forget the address,
        // ask for one. The container's own address is printed for the test.
        let out = ok(t.sh(
            &a,
            "ip -o -4 addr show host0; ip addr flush dev host0; udhcpc -i host0 -n -q -s /bin/true 2>&1",
        ));
        let ip = out
            .split_whitespace()
            .nth(3)
            .unwrap()
            .split('/')
            .next()
            .unwrap()
            .to_string();
        assert!(out.contains(&format!("lease of {ip} obtained")), "{out}");
    }
}

/// A network namespace with one veth link to the host, `10.254.N.2/30`
/// inside and `.1` on the host end: a host on this machine, nowhere else.
struct TestHost {
    ns: String,
    link: String,
    host_ip: String,
    ip: String,
}

impl TestHost {
    /// `tag` (0 or 1) keeps the hosts of tests that may run together apart.
    fn new(tag: u32) -> TestHost {
        let pid = std::process::id();
        let n = (pid % 125) * 2 + tag;
        let (ns, link, peer) = (
            format!("ntth{pid}t{tag}"),
            format!("nth{}t{tag}a", pid % 100000),
            format!("nth{}t{tag}b", pid % 100000),
        );
        ip(&["netns", "add", &ns]);
        ip(&["link", "add", &link, "type", "veth", "peer", "name", &peer]);
        ip(&["link", "set", &peer, "netns", &ns]);
        let (host_ip, their) = (format!("10.254.{n}.1"), format!("10.254.{n}.2"));
        ip(&["addr", "add", &format!("{host_ip}/30"), "dev", &link]);
        ip(&["link", "set", &link, "up"]);
        ip(&[
            "-n",
            &ns,
            "addr",
            "add",
            &format!("{their}/30"),
            "dev",
            &peer,
        ]);
        ip(&["-n", &ns, "link", "set", &peer, "up"]);
        ip(&["-n", &ns, "link", "set", "lo", "up"]);
        TestHost {
            ns,
            link,
            host_ip,
            ip: their,
        }
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns]).args(args);
        run(c)
    }
}

impl Drop for TestHost {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.link])
            .status();
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
    }
}

fn nft_tables() -> String {
    stdout_of(
        &Command::new("nft")
            .args(["list", "tables"])
            .output()
            .unwrap()
            .stdout,
    )
}

#[test]
fn container_reaches_a_host_beyond_ours_masqueraded() {
    if ours_only() {
        return;
    }
    let th = TestHost::new(0);
    let t = Tree::busybox("outbound");
    let name = format!("no{}", std::process::id() % 100000);
    // The test host has no route back to the container's subnet: replies
    // arrive only because the container's traffic leaves as the host's.
    let out = ok(t.sh(&["-n", "-M", &name], &format!("ping -c1 -W3 {}", th.ip)));
    assert!(out.contains("1 packets received"), "{out}");
    assert!(!nft_tables().contains(&format!("nspawn-{name}")));
}

#[test]
fn ports_are_forwarded_from_other_hosts_and_localhost() {
    if ours_only() {
        return;
    }
    let th = TestHost::new(1);
    let t = Tree::busybox("ports");
    let m = marker();
    std::fs::create_dir_all(t.join("www")).unwrap();
    std::fs::write(t.join("www/index.html"), format!("port {m}\n")).unwrap();
    let name = format!("np{}", std::process::id() % 100000);
    let port = 20000 + std::process::id() % 20000;
    let r = start_script(
        &t,
        &["-n", "-M", &name, &format!("--port=tcp:{port}:80")],
        "httpd -f -p 80 -h /www",
    );
    assert!(nft_tables().contains(&format!("table inet nspawn-{name}")));
    let mut page = None;
    assert!(wait_until(Duration::from_secs(10), || {
        page = http_get(&format!("127.0.0.1:{port}"));
        page.is_some()
    }));
    assert!(page.unwrap().contains(&format!("port {m}")));
    let o = th.run(&[
        "busybox",
        "wget",
        "-q",
        "-O-",
        &format!("http://{}:{port}/", th.host_ip),
    ]);
    assert!(ok(o).contains(&format!("port {m}")));
    r.stop();
    assert!(!nft_tables().contains(&format!("nspawn-{name}")));
    assert!(http_get(&format!("127.0.0.1:{port}")).is_none());
}

#[test]
fn resolv_conf_is_the_hosts_when_its_resolvers_are_reachable() {
    if ours_only() {
        return;
    }
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap();
    let reachable = host
        .lines()
        .filter_map(|l| l.strip_prefix("nameserver "))
        .all(|a| !a.trim().starts_with("127.") && !a.contains(':'));
    let t = Tree::busybox("resolv");
    std::fs::write(t.join("etc/resolv.conf"), "# the tree's own\n").unwrap();
    let name = format!("nr{}", std::process::id() % 100000);
    let inside = ok(t.sh(&["-n", "-M", &name], "cat /etc/resolv.conf"));
    if reachable {
        assert_eq!(inside, host);
    } else {
        assert_eq!(inside, "# the tree's own\n");
    }
    // Loopback only: the tree's own is left alone, as the reference does.
    std::fs::write(t.join("etc/resolv.conf"), "# the tree's own\n").unwrap();
    let inside = ok(t.sh(&["--private-network"], "cat /etc/resolv.conf"));
    assert_eq!(inside, "# the tree's own\n");
}

#[test]
fn a_name_clash_fails_and_leaves_the_running_machine_alone() {
    let t1 = Tree::busybox("clash1");
    let t2 = Tree::busybox("clash2");
    let name = format!("nq{}", std::process::id() % 100000);
    let r = start(&t1, &["-n", "-M", &name]);
    let o = t2.sh(&["-n", "-M", &name], "true");
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    if !reference() {
        assert_eq!(
            stderr(&o),
            format!("nspawn: machine '{name}' is already running\n")
        );
        assert!(
            record(&name).is_some(),
            "the running machine's record was taken"
        );
    }
    assert!(host_links().contains(&format!("ve-{name}")));
    r.stop();
    assert!(gone(&format!("ve-{name}")));
}

/// Without nft on the host, `-n` still gets its link and addresses (the
/// masquerading is left out, with a line saying so); `--port`, which needs
/// the table, is refused with one line and leaves nothing.
#[test]
fn without_nft_links_work_and_ports_are_refused() {
    if ours_only() {
        return;
    }
    let t = Tree::busybox("nonft");
    // Short enough for the host end to be ve-NAME.
    let name = format!("nf{}", std::process::id() % 100000);
    let mut c = nspawn(&[
        "--pipe",
        "-n",
        "-M",
        &name,
        "-D",
        t.dir(),
        "/bin/sh",
        "-c",
        "ip -o -4 addr show host0",
    ]);
    c.env("PATH", "/usr/bin:/bin");
    let o = run(c);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("inet 192.168."), "{}", stdout(&o));
    assert!(stderr(&o).contains("nft not found"), "{}", stderr(&o));
    let mut c = nspawn(&[
        "--pipe",
        "-n",
        "-M",
        &name,
        "-p",
        "18088:80",
        "-D",
        t.dir(),
        "/bin/true",
    ]);
    c.env("PATH", "/usr/bin:/bin");
    let o = run(c);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--port needs nft"), "{}", stderr(&o));
    assert!(record(&name).is_none());
    assert!(gone(&format!("ve-{name}")), "link left");
}
