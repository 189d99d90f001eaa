//! User namespace options: `-U`, `--private-users=`,
//! `--private-users-ownership=`. Values are checked by libnspawn's parsers.

use clap::Args;
use libnspawn::userns::{Mode, Ownership, UsernsSettings};

#[derive(Args, Debug, Default)]
pub struct UsernsArgs {
    /// Same as --private-users=pick --private-users-ownership=auto
    #[arg(short = 'U', help_heading = "User namespace")]
    private_users_pick: bool,

    /// Run in a user namespace: no, yes, pick, identity, BASE[:RANGE]
    #[arg(long = "private-users", value_name = "MODE", num_args = 0..=1, require_equals = true, default_missing_value = "yes", value_parser = parse_mode, help_heading = "User namespace")]
    private_users: Option<Mode>,

    /// Make the tree's ownership fit the range: off, chown, map, auto
    #[arg(long = "private-users-ownership", value_name = "MODE", value_parser = parse_ownership, help_heading = "User namespace")]
    private_users_ownership: Option<Ownership>,

    /// Make a host user and their home visible inside (needs a user namespace)
    #[arg(long = "bind-user", value_name = "NAME", value_parser = parse_user, action = clap::ArgAction::Append, help_heading = "User namespace")]
    bind_user: Vec<String>,
}

fn parse_user(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.len() <= 32
        && !s.starts_with('-')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    match ok {
        true => Ok(s.to_string()),
        false => Err(format!("Invalid user name to bind: {s}")),
    }
}

fn parse_mode(s: &str) -> Result<Mode, String> {
    Mode::parse(s).map_err(|e| e.to_string())
}

fn parse_ownership(s: &str) -> Result<Ownership, String> {
    Ownership::parse(s).map_err(|e| e.to_string())
}

impl UsernsArgs {
    /// As the reference: `-U` is `pick` with `auto` ownership unless
    /// `--private-users=` says otherwise; without an ownership given,
    /// `pick` (however asked for) is `auto` too, the rest `off`.
    pub fn into_settings(self) -> Result<UsernsSettings, String> {
        let mode = match (self.private_users, self.private_users_pick) {
            (Some(m), _) => m,
            (None, true) => Mode::Pick,
            (None, false) => Mode::No,
        };
        let ownership = match self.private_users_ownership {
            Some(o) => o,
            None if self.private_users_pick || mode == Mode::Pick => Ownership::Auto,
            None => Ownership::Off,
        };
        if !self.bind_user.is_empty() && mode == Mode::No {
            return Err("--bind-user= requires --private-users".into());
        }
        Ok(UsernsSettings {
            mode,
            ownership,
            bind_users: self.bind_user,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        u: UsernsArgs,
    }

    fn parse(a: &[&str]) -> Result<UsernsSettings, clap::Error> {
        T::try_parse_from(std::iter::once("t").chain(a.iter().copied()))
            .map(|t| t.u.into_settings().unwrap())
    }

    #[test]
    fn modes() {
        let u = parse(&["-U"]).unwrap();
        assert_eq!((u.mode, u.ownership), (Mode::Pick, Ownership::Auto));
        let u = parse(&["--private-users"]).unwrap();
        assert_eq!((u.mode, u.ownership), (Mode::Yes, Ownership::Off));
        let u = parse(&["-U", "--private-users=identity"]).unwrap();
        assert_eq!((u.mode, u.ownership), (Mode::Identity, Ownership::Auto));
        let u = parse(&["--private-users=pick"]).unwrap();
        assert_eq!((u.mode, u.ownership), (Mode::Pick, Ownership::Auto));
        let u = parse(&["--private-users=pick", "--private-users-ownership=map"]).unwrap();
        assert_eq!((u.mode, u.ownership), (Mode::Pick, Ownership::Map));
        assert!(parse(&["--private-users=bogus"]).is_err());
        assert!(parse(&["--private-users-ownership=bogus"]).is_err());
        assert!(!parse(&[]).unwrap().enabled());
        let t = T::try_parse_from(["t", "--bind-user=alice"]).unwrap();
        assert!(t.u.into_settings().is_err());
        assert!(T::try_parse_from(["t", "--bind-user=a/b"]).is_err());
        let t = T::try_parse_from(["t", "-U", "--bind-user=alice"]).unwrap();
        assert_eq!(t.u.into_settings().unwrap().bind_users, ["alice"]);
    }
}
