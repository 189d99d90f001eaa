//! Whether an nftables table exists: one `NFT_MSG_GETTABLE` request over
//! netlink. By hand, as the crates that speak nf_tables are bindings to
//! libnftnl or unmaintained (see nat.rs); asking `nft` instead costs a
//! process (3 ms), and `nft delete` of a missing table, which we used to
//! run to be sure, 16 ms (the kernel aborts the transaction).

use netlink_sys::{protocols::NETLINK_NETFILTER, Socket, SocketAddr};

const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFT_MSG_NEWTABLE: u16 = 0;
const NFT_MSG_GETTABLE: u16 = 1;
const NFTA_TABLE_NAME: u16 = 1;
const NFPROTO_INET: u8 = 1;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;

/// The request for table `name` of family inet.
fn request(name: &str, seq: u32) -> Vec<u8> {
    let mut attr = name.as_bytes().to_vec();
    attr.push(0);
    let nla_len = 4 + attr.len();
    let padded = (nla_len + 3) & !3;
    let len = 16 + 4 + padded;
    let mut b = Vec::with_capacity(len);
    b.extend_from_slice(&(len as u32).to_ne_bytes());
    b.extend_from_slice(&(NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_GETTABLE).to_ne_bytes());
    b.extend_from_slice(&(NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
    b.extend_from_slice(&seq.to_ne_bytes());
    b.extend_from_slice(&0u32.to_ne_bytes());
    // nfgenmsg: family, version, resource id (big endian).
    b.extend_from_slice(&[NFPROTO_INET, 0, 0, 0]);
    b.extend_from_slice(&(nla_len as u16).to_ne_bytes());
    b.extend_from_slice(&NFTA_TABLE_NAME.to_ne_bytes());
    b.extend_from_slice(&attr);
    b.resize(len, 0);
    b
}

/// What the replies in `buf` say: `Some(true)` a table came, `Some(false)`
/// none (ENOENT), `None` not decided yet or another error (`Err`).
fn answer(buf: &[u8], seq: u32, seen: &mut bool) -> Option<Result<bool, i32>> {
    let mut at = 0;
    while at + 16 <= buf.len() {
        let word = |o: usize| u32::from_ne_bytes(buf[at + o..at + o + 4].try_into().unwrap());
        let len = word(0) as usize;
        if len < 16 || at + len > buf.len() {
            return Some(Err(libc::EPROTO));
        }
        let kind = u16::from_ne_bytes([buf[at + 4], buf[at + 5]]);
        if word(8) == seq {
            if kind == NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_NEWTABLE {
                *seen = true;
            } else if kind == NLMSG_ERROR && len >= 20 {
                let err = i32::from_ne_bytes(buf[at + 16..at + 20].try_into().unwrap());
                return Some(match err {
                    0 => Ok(*seen),
                    e if e == -libc::ENOENT => Ok(false),
                    e => Err(-e),
                });
            }
        }
        at += (len + 3) & !3;
    }
    None
}

/// Whether table `inet NAME` exists; `None` when the kernel cannot say
/// (no nf_tables, no netlink): the caller then acts as if it might.
pub fn table_exists(name: &str) -> Option<bool> {
    let mut sock = Socket::new(NETLINK_NETFILTER).ok()?;
    sock.bind_auto().ok()?;
    sock.connect(&SocketAddr::new(0, 0)).ok()?;
    let seq = 1;
    sock.send(&request(name, seq), 0).ok()?;
    let mut seen = false;
    let mut buf = vec![0u8; 16384];
    loop {
        let n = sock.recv(&mut &mut buf[..], 0).ok()?;
        if let Some(r) = answer(&buf[..n], seq, &mut seen) {
            return r.ok();
        }
        if n == 0 {
            return None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_is_a_padded_gettable() {
        let r = request("nspawn-ab", 7);
        assert_eq!(r.len(), 16 + 4 + 16);
        assert_eq!(
            u32::from_ne_bytes(r[0..4].try_into().unwrap()) as usize,
            r.len()
        );
        assert_eq!(u16::from_ne_bytes([r[4], r[5]]), 0x0a01);
        assert_eq!(&r[20..22], &14u16.to_ne_bytes());
        assert_eq!(&r[24..34], b"nspawn-ab\0");
    }

    #[test]
    fn answers_decide_on_the_error_message() {
        let msg = |kind: u16, seq: u32, err: Option<i32>| {
            let mut m = vec![];
            let len: u32 = if err.is_some() { 36 } else { 20 };
            m.extend_from_slice(&len.to_ne_bytes());
            m.extend_from_slice(&kind.to_ne_bytes());
            m.extend_from_slice(&0u16.to_ne_bytes());
            m.extend_from_slice(&seq.to_ne_bytes());
            m.extend_from_slice(&0u32.to_ne_bytes());
            match err {
                Some(e) => {
                    m.extend_from_slice(&e.to_ne_bytes());
                    m.resize(36, 0);
                }
                None => m.extend_from_slice(&[1, 0, 0, 0]),
            }
            m
        };
        let mut seen = false;
        let table = msg(0x0a00, 3, None);
        assert_eq!(answer(&table, 3, &mut seen), None);
        assert!(seen);
        assert_eq!(answer(&msg(2, 3, Some(0)), 3, &mut seen), Some(Ok(true)));
        let mut seen = false;
        let missing = msg(2, 3, Some(-libc::ENOENT));
        assert_eq!(answer(&missing, 3, &mut seen), Some(Ok(false)));
        assert_eq!(
            answer(&msg(2, 3, Some(-libc::EPERM)), 3, &mut seen),
            Some(Err(libc::EPERM))
        );
        // Another request's answer is not ours.
        assert_eq!(answer(&missing, 4, &mut seen), None);
    }

    /// Against the kernel: a table made with nft is found, then not.
    #[test]
    fn finds_a_table_the_kernel_has() {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let name = format!("nspawn-nftq-{}", std::process::id());
        let nft = |args: &[&str]| std::process::Command::new("nft").args(args).status();
        if !nft(&["add", "table", "inet", &name]).is_ok_and(|s| s.success()) {
            return; // no nft here
        }
        let found = table_exists(&name);
        let _ = nft(&["delete", "table", "inet", &name]);
        assert_eq!(found, Some(true));
        assert_eq!(table_exists(&name), Some(false));
    }
}
