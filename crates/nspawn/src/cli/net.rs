//! Networking options: private network, veth links, bridges, zones, host
//! interfaces, MACVLAN/IPVLAN, a namespace to join, port forwards.

use clap::{ArgAction, Args};
use libnspawn::net::{spec, NetSettings, Port};

#[derive(Args, Debug, Default)]
pub struct NetArgs {
    /// Only a loopback interface in the container
    #[arg(long = "private-network", help_heading = "Networking")]
    pub private_network: bool,

    /// A virtual Ethernet link between host (ve-NAME) and container (host0)
    #[arg(short = 'n', long = "network-veth", help_heading = "Networking")]
    veth: bool,

    /// An additional veth link between host and container
    #[arg(long = "network-veth-extra", value_name = "HOSTIF[:CONTAINERIF]", action = ArgAction::Append,
        value_parser = parse_veth_extra, help_heading = "Networking")]
    veth_extra: Vec<(String, String)>,

    /// Add the host end of the veth link (vb-NAME) to an existing bridge
    #[arg(long = "network-bridge", value_name = "INTERFACE", value_parser = parse_bridge, help_heading = "Networking")]
    bridge: Option<String>,

    /// Add the host end of the veth link to bridge vz-NAME, made on first use
    #[arg(long = "network-zone", value_name = "NAME", value_parser = parse_zone, help_heading = "Networking")]
    zone: Option<String>,

    /// Move a host interface into the container (renamed to NAME), and back
    #[arg(long = "network-interface", value_name = "INTERFACE[:NAME]", action = ArgAction::Append,
        value_parser = parse_interface, help_heading = "Networking")]
    interfaces: Vec<Vec<(String, String)>>,

    /// A MACVLAN link on a host interface in the container (mv-INTERFACE)
    #[arg(long = "network-macvlan", value_name = "INTERFACE[:NAME]", action = ArgAction::Append,
        value_parser = parse_macvlan, help_heading = "Networking")]
    macvlan: Vec<Vec<(String, String)>>,

    /// An IPVLAN link on a host interface in the container (iv-INTERFACE)
    #[arg(long = "network-ipvlan", value_name = "INTERFACE[:NAME]", action = ArgAction::Append,
        value_parser = parse_ipvlan, help_heading = "Networking")]
    ipvlan: Vec<Vec<(String, String)>>,

    /// Join this network namespace instead of making one
    #[arg(
        long = "network-namespace-path",
        value_name = "PATH",
        help_heading = "Networking"
    )]
    namespace_path: Option<std::path::PathBuf>,

    /// Forward a host port to the container
    #[arg(short = 'p', long = "port", value_name = "[PROTOCOL:]HOSTPORT[:CONTAINERPORT]", action = ArgAction::Append,
        value_parser = parse_port, allow_hyphen_values = true, help_heading = "Networking")]
    ports: Vec<Port>,
}

fn parse_veth_extra(s: &str) -> Result<(String, String), String> {
    spec::parse_veth_extra(s).map_err(|e| e.to_string())
}

fn parse_bridge(s: &str) -> Result<String, String> {
    spec::parse_bridge(s).map_err(|e| e.to_string())
}

fn parse_zone(s: &str) -> Result<String, String> {
    spec::parse_zone(s).map_err(|e| e.to_string())
}

fn parse_interface(s: &str) -> Result<Vec<(String, String)>, String> {
    spec::parse_iface_pairs("Network interface", "", s).map_err(|e| e.to_string())
}

fn parse_macvlan(s: &str) -> Result<Vec<(String, String)>, String> {
    spec::parse_iface_pairs("MACVLAN network interface", "mv-", s).map_err(|e| e.to_string())
}

fn parse_ipvlan(s: &str) -> Result<Vec<(String, String)>, String> {
    spec::parse_iface_pairs("IPVLAN network interface", "iv-", s).map_err(|e| e.to_string())
}

fn parse_port(s: &str) -> Result<Port, String> {
    spec::parse_port(s).map_err(|e| e.to_string())
}

impl NetArgs {
    /// The settings, and whether the container gets a network namespace of
    /// its own.
    pub fn into_settings(self) -> Result<(NetSettings, bool), String> {
        let s = NetSettings {
            veth: self.veth,
            veth_extra: self.veth_extra,
            bridge: self.bridge,
            zone: self.zone,
            interfaces: self.interfaces.into_iter().flatten().collect(),
            macvlan: self.macvlan.into_iter().flatten().collect(),
            ipvlan: self.ipvlan.into_iter().flatten().collect(),
            namespace_path: self.namespace_path,
            ports: self.ports,
        };
        s.check_combination(self.private_network)
            .map_err(|e| e.to_string())?;
        let private = self.private_network || s.implies_private();
        Ok((s, private))
    }
}

#[cfg(test)]
mod tests {
    use crate::cli::Cli;
    use clap::Parser;

    fn settings(args: &[&str]) -> Result<(libnspawn::net::NetSettings, bool), String> {
        let c = Cli::try_parse_from(std::iter::once("nspawn").chain(args.iter().copied()))
            .map_err(|e| e.to_string())?;
        c.net.into_settings()
    }

    #[test]
    fn private_is_implied() {
        assert!(settings(&["-n"]).unwrap().1);
        assert!(settings(&["--network-zone=z"]).unwrap().1);
        assert!(!settings(&[]).unwrap().1);
        // Joining a namespace is not a private one of ours.
        assert!(
            !settings(&["--network-namespace-path=/run/netns/x"])
                .unwrap()
                .1
        );
    }

    #[test]
    fn bad_values_and_combinations() {
        for bad in [
            &["-n", "--port="][..],
            &["-n", "--port=-1"],
            &["-n", "--port=:"],
            &["-n", "--port=icmp:80:8080"],
            &["-n", "--port=tcp::8080"],
            &["-n", "--port=8080:"],
            &["--port=80"],
            &["--network-bridge=br0", "--network-zone=z"],
            &["--network-namespace-path=/x", "-n"],
            &["--network-namespace-path=/x", "--port=80"],
            &["--network-zone=averyveryverylongzone"],
            &["--network-zone="],
            &["--network-bridge="],
            &["--network-interface="],
            &["--network-veth-extra=a:b:c"],
        ] {
            assert!(settings(bad).is_err(), "{bad:?}");
        }
        assert!(settings(&["--network-namespace-path=/x", "--private-network"]).is_ok());
        assert!(settings(&["-n", "--port=80"]).is_ok());
        assert!(settings(&["--network-zone=z", "--port=udp:53"]).is_ok());
        assert!(settings(&["--private-network", "--port=80"]).is_err());
        assert!(settings(&["--network-bridge=br0", "--port=80"]).is_err());
    }
}
