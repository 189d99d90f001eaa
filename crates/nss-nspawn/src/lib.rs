//! `libnss_nspawn.so.2`: with `hosts: files nspawn dns` in
//! /etc/nsswitch.conf, the names of running nspawn machines resolve to the
//! addresses their runners publish (`nspawn-registry`), without D-Bus.
//!
//! The glibc NSS interface is C (nss(5), glibc's nss.h and the
//! `gaih_addrtuple` of its private headers); no crate provides it, so the
//! entry points and structures are written here. The module runs inside
//! whatever process resolves a name: it must never panic (the release
//! profile aborts on panic), never write, and only report what it finds.

use libc::{c_char, c_int, hostent, size_t};
use std::ffi::CStr;
use std::net::Ipv4Addr;

#[allow(non_camel_case_types)]
type nss_status = c_int;
const NSS_STATUS_TRYAGAIN: nss_status = -2;
const NSS_STATUS_NOTFOUND: nss_status = 0;
const NSS_STATUS_SUCCESS: nss_status = 1;
const HOST_NOT_FOUND: c_int = 1;
const NO_DATA: c_int = 4;
const TRY_AGAIN: c_int = 2;

/// glibc's `struct gaih_addrtuple` (nss.h).
#[repr(C)]
pub struct GaihAddrtuple {
    next: *mut GaihAddrtuple,
    name: *mut c_char,
    family: c_int,
    addr: [u32; 4],
    scopeid: u32,
}

/// Addresses handed out per name, at most.
const ADDRESSES_MAX: usize = 16;
/// The longest name looked at: a DNS name (RFC 1035 2.3.4) and its dot.
const NAME_MAX: usize = 254;

/// The IPv4 addresses of a running machine called `name`.
fn addresses(name: *const c_char) -> Option<(String, Vec<Ipv4Addr>)> {
    if name.is_null() {
        return None;
    }
    // SAFETY: glibc passes a NUL-terminated name.
    let name = unsafe { CStr::from_ptr(name) }.to_bytes();
    if name.len() > NAME_MAX {
        return None;
    }
    let name = std::str::from_utf8(name).ok()?;
    let name = name.strip_suffix('.').unwrap_or(name);
    answer(name, nspawn_registry::lookup(name)?)
}

/// What to tell a caller that asked for `name` about `record`: the record's
/// name only if it is the one asked for (a caller shown a canonical name
/// believes it), and only addresses a machine can have — never the
/// unspecified, broadcast, loopback or a multicast address, which would
/// send the caller's traffic somewhere else than a machine. At most
/// `ADDRESSES_MAX` of them, without repeats.
fn answer(name: &str, record: nspawn_registry::Record) -> Option<(String, Vec<Ipv4Addr>)> {
    if record.name != name || !nspawn_registry::machine_name_is_valid(&record.name) {
        return None;
    }
    let mut addrs: Vec<Ipv4Addr> = Vec::new();
    for a in record.addresses.iter().filter_map(|a| a.parse().ok()) {
        let a: Ipv4Addr = a;
        if a.is_unspecified() || a.is_broadcast() || a.is_loopback() || a.is_multicast() {
            continue;
        }
        if !addrs.contains(&a) && addrs.len() < ADDRESSES_MAX {
            addrs.push(a);
        }
    }
    Some((record.name, addrs))
}

/// A bump allocator over the caller's buffer.
struct Buf {
    ptr: *mut u8,
    len: usize,
    used: usize,
}

impl Buf {
    fn alloc(&mut self, size: usize, align: usize) -> Option<*mut u8> {
        let start = (self.ptr as usize + self.used).next_multiple_of(align) - self.ptr as usize;
        if start.checked_add(size)? > self.len {
            return None;
        }
        self.used = start + size;
        // SAFETY: within the caller's buffer, checked above.
        Some(unsafe { self.ptr.add(start) })
    }

    fn string(&mut self, s: &str) -> Option<*mut c_char> {
        let p = self.alloc(s.len() + 1, 1)?;
        // SAFETY: p has room for the bytes and the NUL.
        unsafe {
            std::ptr::copy_nonoverlapping(s.as_ptr(), p, s.len());
            *p.add(s.len()) = 0;
        }
        Some(p.cast())
    }
}

fn erange(errnop: *mut c_int, h_errnop: *mut c_int) -> nss_status {
    // SAFETY: glibc passes valid pointers for both.
    unsafe {
        *errnop = libc::ERANGE;
        *h_errnop = TRY_AGAIN;
    }
    NSS_STATUS_TRYAGAIN
}

fn not_found(errnop: *mut c_int, h_errnop: *mut c_int, no_data: bool) -> nss_status {
    // SAFETY: glibc passes valid pointers for both.
    unsafe {
        *errnop = libc::ENOENT;
        *h_errnop = if no_data { NO_DATA } else { HOST_NOT_FOUND };
    }
    NSS_STATUS_NOTFOUND
}

/// # Safety
/// Called by glibc with the arguments nss(5) describes.
#[no_mangle]
pub unsafe extern "C" fn _nss_nspawn_gethostbyname4_r(
    name: *const c_char,
    pat: *mut *mut GaihAddrtuple,
    buffer: *mut c_char,
    buflen: size_t,
    errnop: *mut c_int,
    h_errnop: *mut c_int,
    ttlp: *mut i32,
) -> nss_status {
    let Some((canon, addrs)) = addresses(name) else {
        return not_found(errnop, h_errnop, false);
    };
    if addrs.is_empty() {
        return not_found(errnop, h_errnop, true);
    }
    let mut buf = Buf {
        ptr: buffer.cast(),
        len: buflen,
        used: 0,
    };
    let Some(cname) = buf.string(&canon) else {
        return erange(errnop, h_errnop);
    };
    let mut prev: *mut GaihAddrtuple = std::ptr::null_mut();
    for a in addrs.iter().rev() {
        let Some(p) = buf.alloc(
            std::mem::size_of::<GaihAddrtuple>(),
            std::mem::align_of::<GaihAddrtuple>(),
        ) else {
            return erange(errnop, h_errnop);
        };
        let t = p.cast::<GaihAddrtuple>();
        t.write(GaihAddrtuple {
            next: prev,
            name: cname,
            family: libc::AF_INET,
            addr: [u32::from_ne_bytes(a.octets()), 0, 0, 0],
            scopeid: 0,
        });
        prev = t;
    }
    *pat = prev;
    if !ttlp.is_null() {
        *ttlp = 0;
    }
    NSS_STATUS_SUCCESS
}

/// # Safety
/// Called by glibc with the arguments nss(5) describes.
#[no_mangle]
pub unsafe extern "C" fn _nss_nspawn_gethostbyname3_r(
    name: *const c_char,
    af: c_int,
    host: *mut hostent,
    buffer: *mut c_char,
    buflen: size_t,
    errnop: *mut c_int,
    h_errnop: *mut c_int,
    ttlp: *mut i32,
    canonp: *mut *mut c_char,
) -> nss_status {
    let Some((canon, addrs)) = addresses(name) else {
        return not_found(errnop, h_errnop, false);
    };
    // Only IPv4 addresses are published.
    if af != libc::AF_INET || addrs.is_empty() {
        return not_found(errnop, h_errnop, true);
    }
    let mut buf = Buf {
        ptr: buffer.cast(),
        len: buflen,
        used: 0,
    };
    let Some(cname) = buf.string(&canon) else {
        return erange(errnop, h_errnop);
    };
    let ptr_size = std::mem::size_of::<*mut c_char>();
    let Some(aliases) = buf.alloc(ptr_size, ptr_size) else {
        return erange(errnop, h_errnop);
    };
    aliases.cast::<*mut c_char>().write(std::ptr::null_mut());
    let Some(list) = buf.alloc(ptr_size * (addrs.len() + 1), ptr_size) else {
        return erange(errnop, h_errnop);
    };
    let list = list.cast::<*mut c_char>();
    for (i, a) in addrs.iter().enumerate() {
        let Some(p) = buf.alloc(4, 4) else {
            return erange(errnop, h_errnop);
        };
        std::ptr::copy_nonoverlapping(a.octets().as_ptr(), p, 4);
        list.add(i).write(p.cast());
    }
    list.add(addrs.len()).write(std::ptr::null_mut());
    (*host).h_name = cname;
    (*host).h_aliases = aliases.cast();
    (*host).h_addrtype = libc::AF_INET;
    (*host).h_length = 4;
    (*host).h_addr_list = list;
    if !ttlp.is_null() {
        *ttlp = 0;
    }
    if !canonp.is_null() {
        *canonp = cname;
    }
    NSS_STATUS_SUCCESS
}

/// # Safety
/// Called by glibc with the arguments nss(5) describes.
#[no_mangle]
pub unsafe extern "C" fn _nss_nspawn_gethostbyname2_r(
    name: *const c_char,
    af: c_int,
    host: *mut hostent,
    buffer: *mut c_char,
    buflen: size_t,
    errnop: *mut c_int,
    h_errnop: *mut c_int,
) -> nss_status {
    _nss_nspawn_gethostbyname3_r(
        name,
        af,
        host,
        buffer,
        buflen,
        errnop,
        h_errnop,
        std::ptr::null_mut(),
        std::ptr::null_mut(),
    )
}

/// # Safety
/// Called by glibc with the arguments nss(5) describes.
#[no_mangle]
pub unsafe extern "C" fn _nss_nspawn_gethostbyname_r(
    name: *const c_char,
    host: *mut hostent,
    buffer: *mut c_char,
    buflen: size_t,
    errnop: *mut c_int,
    h_errnop: *mut c_int,
) -> nss_status {
    _nss_nspawn_gethostbyname3_r(
        name,
        libc::AF_INET,
        host,
        buffer,
        buflen,
        errnop,
        h_errnop,
        std::ptr::null_mut(),
        std::ptr::null_mut(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CString;

    fn record(name: &str, addresses: &[&str]) -> nspawn_registry::Record {
        let mut r = nspawn_registry::parse(
            br#"{"name":"m","class":"container","service":"nspawn","root":"/",
                "leader":1,"runner":1,"id":"","cgroup":null,"interfaces":[],
                "addresses":[],"state":"running","started_usec":0,"bounding":0}"#,
        )
        .unwrap();
        r.name = name.into();
        r.addresses = addresses.iter().map(|a| a.to_string()).collect();
        r
    }

    #[test]
    fn only_addresses_a_machine_can_have() {
        let (name, addrs) = answer(
            "m",
            record(
                "m",
                &[
                    "0.0.0.0",
                    "255.255.255.255",
                    "127.0.0.1",
                    "127.1.2.3",
                    "224.0.0.1",
                    "239.1.1.1",
                    "10.0.0.2 ",
                    "10.0.0.2\n",
                    "010.0.0.2",
                    "10.0.0.256",
                    "fe80::1",
                    "",
                    "\u{1b}[2J",
                    "10.0.0.2",
                    "10.0.0.2",
                    "192.168.5.9",
                ],
            ),
        )
        .unwrap();
        assert_eq!(name, "m");
        assert_eq!(
            addrs,
            [Ipv4Addr::new(10, 0, 0, 2), Ipv4Addr::new(192, 168, 5, 9)]
        );
    }

    #[test]
    fn addresses_are_bounded() {
        let many: Vec<String> = (1..=64).map(|i| format!("10.0.0.{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        let (_, addrs) = answer("m", record("m", &many)).unwrap();
        assert_eq!(addrs.len(), ADDRESSES_MAX);
    }

    #[test]
    fn a_record_under_another_name_is_not_believed() {
        assert!(answer("m", record("google.com", &["10.0.0.2"])).is_none());
        assert!(answer("m", record("M", &["10.0.0.2"])).is_none());
        assert!(answer("x\u{1b}", record("x\u{1b}", &["10.0.0.2"])).is_none());
    }

    #[test]
    fn names_that_are_no_machine_names_find_nothing() {
        assert!(addresses(std::ptr::null()).is_none());
        for n in [
            "".to_string(),
            ".".into(),
            "..".into(),
            "../../etc/passwd".into(),
            "a/b".into(),
            "a".repeat(100_000),
            "\u{e9}".into(),
        ] {
            let c = CString::new(n.clone()).unwrap();
            assert!(addresses(c.as_ptr()).is_none(), "{n:.40}");
        }
    }

    /// The C entry points with a buffer too small at every size: ERANGE,
    /// never a write past it.
    #[test]
    fn small_buffers_are_erange() {
        let (canon, addrs) = ("m".to_string(), vec![Ipv4Addr::new(10, 0, 0, 2); 3]);
        let mut big = vec![0u8; 4096];
        let mut last_erange = 0;
        for len in 0..512 {
            big.fill(0xaa);
            let mut buf = Buf {
                ptr: big.as_mut_ptr(),
                len,
                used: 0,
            };
            let fits = buf.string(&canon).is_some()
                && addrs.iter().all(|_| {
                    buf.alloc(
                        std::mem::size_of::<GaihAddrtuple>(),
                        std::mem::align_of::<GaihAddrtuple>(),
                    )
                    .is_some()
                });
            if !fits {
                last_erange = len;
            }
            assert!(big[len..].iter().all(|&b| b == 0xaa), "wrote past {len}");
            assert!(buf.used <= len);
        }
        assert!(last_erange > 0);
    }
}
