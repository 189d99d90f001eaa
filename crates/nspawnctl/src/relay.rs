//! `nspawnctl shell` without a pty of the machine's (our standard input or
//! output is not a terminal): those of our standard descriptors that are
//! a terminal, a file or a device reach the session as pipes we copy
//! through, never as themselves. A process of the machine holding our
//! terminal could push input into it that our shell reads after we end
//! (TIOCSTI, which root of a machine without `-U` may do), change its
//! modes, or keep it open; and root of a machine without `-U` (the host's
//! CAP_DAC_OVERRIDE) could reopen a file given as input for writing
//! through /proc/PID/fd. Pipes and sockets go in as they are: reopened,
//! a pipe is only itself, and a socket cannot be.

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

/// One relayed descriptor: ours (the terminal, 0 to 2) and our end of
/// its pipe.
struct Link {
    ours: i32,
    pipe: Option<OwnedFd>,
}

/// The pipes for the session (to dup onto 0, 1, 2 in the child; `None`
/// keeps ours) and our ends.
pub struct Relay {
    pub child: [Option<OwnedFd>; 3],
    links: Vec<Link>,
}

/// Pipes for those of 0, 1, 2 that are neither a pipe nor a socket.
pub fn prepare() -> Result<Relay, String> {
    let mut child: [Option<OwnedFd>; 3] = [None, None, None];
    let mut links = vec![];
    for fd in 0..3 {
        // SAFETY: 0..3 are open for the life of the process.
        let b = unsafe { BorrowedFd::borrow_raw(fd) };
        let kind = nix::sys::stat::fstat(b).map(|st| st.st_mode & libc::S_IFMT);
        if matches!(kind, Ok(libc::S_IFIFO | libc::S_IFSOCK) | Err(_)) {
            continue;
        }
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| format!("cannot make a pipe: {}", e.desc()))?;
        let (theirs, mine) = if fd == 0 { (r, w) } else { (w, r) };
        child[fd as usize] = Some(theirs);
        links.push(Link {
            ours: fd,
            pipe: Some(mine),
        });
    }
    Ok(Relay { child, links })
}

/// Put the session's pipes on 0, 1, 2 (in the child, before exec).
pub fn install(child: &[Option<OwnedFd>; 3]) -> Result<(), Errno> {
    for (fd, p) in child.iter().enumerate() {
        if let Some(p) = p {
            // SAFETY: dup2 onto our own standard descriptors.
            if unsafe { libc::dup2(p.as_raw_fd(), fd as i32) } < 0 {
                return Err(Errno::last());
            }
        }
    }
    Ok(())
}

impl Relay {
    /// Whether anything is relayed at all.
    pub fn is_empty(&self) -> bool {
        self.links.is_empty()
    }

    /// Copy until the session's process ends (`pidfd` readable), then
    /// what its pipes still hold; the child's ends must be closed by now.
    pub fn run(mut self, pidfd: BorrowedFd) {
        let mut buf = [0u8; 4096];
        let mut ended = false;
        loop {
            let mut fds = vec![PollFd::new(pidfd, PollFlags::POLLIN)];
            // (link, its entry in fds, and for our input the pipe's entry)
            let mut which = vec![];
            // SAFETY: 0 is open for the life of the process.
            let stdin = unsafe { BorrowedFd::borrow_raw(0) };
            for (i, l) in self.links.iter().enumerate() {
                let Some(p) = &l.pipe else { continue };
                if l.ours == 0 {
                    // Our terminal is read when it has input and the pipe
                    // can take a piece at once (a pipe with room takes
                    // PIPE_BUF bytes without blocking): a session that
                    // does not read its input never blocks us.
                    fds.push(PollFd::new(stdin, PollFlags::POLLIN));
                    fds.push(PollFd::new(p.as_fd(), PollFlags::POLLOUT));
                    which.push((i, fds.len() - 2, Some(fds.len() - 1)));
                } else {
                    fds.push(PollFd::new(p.as_fd(), PollFlags::POLLIN));
                    which.push((i, fds.len() - 1, None));
                }
            }
            if which.is_empty() {
                return;
            }
            // Once the process has ended: only what is already there.
            let timeout = if ended {
                PollTimeout::ZERO
            } else {
                PollTimeout::NONE
            };
            match nix::poll::poll(&mut fds, timeout) {
                Err(Errno::EINTR) => continue,
                Err(_) => return,
                Ok(0) if ended => return,
                Ok(_) => {}
            }
            let ready: Vec<bool> = fds
                .iter()
                .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
                .collect();
            drop(fds);
            let gone = ready[0];
            let mut moved = false;
            for &(i, at, pipe) in &which {
                if !ready[at] || pipe.is_some_and(|p| !ready[p]) {
                    continue;
                }
                let l = &mut self.links[i];
                moved |= copy(l, &mut buf);
            }
            if gone && !ended {
                ended = true;
                // Our input is of no use to an ended session.
                self.links.retain(|l| l.ours != 0);
            } else if ended && !moved {
                return;
            }
        }
    }
}

/// One piece across `l`; closes its pipe at its end. Whether data moved.
fn copy(l: &mut Link, buf: &mut [u8; 4096]) -> bool {
    let Some(p) = &l.pipe else { return false };
    // SAFETY: 0..3 are open for the life of the process.
    let ours = unsafe { BorrowedFd::borrow_raw(l.ours) };
    let (from, to) = if l.ours == 0 {
        (ours, p.as_fd())
    } else {
        (p.as_fd(), ours)
    };
    let n = match nix::unistd::read(from, buf) {
        Ok(0) | Err(_) => {
            // End of our input (the session sees its end too), or of the
            // session's output.
            l.pipe = None;
            return false;
        }
        Ok(n) => n,
    };
    let mut rest = &buf[..n];
    while !rest.is_empty() {
        match nix::unistd::write(to, rest) {
            Ok(w) => rest = &rest[w..],
            Err(Errno::EINTR) => {}
            Err(_) => {
                l.pipe = None;
                return false;
            }
        }
    }
    true
}
