//! Facts about the machine bmcd runs on (the BMC itself): host name and network
//! interfaces, read from the kernel. `nix` stays behind this module.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use nix::ifaddrs::getifaddrs;
use nix::net::if_::InterfaceFlags;

/// One network interface of the BMC.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostInterface {
    pub name: String,
    pub mac_address: Option<String>,
    pub up: bool,
    pub running: bool,
    pub loopback: bool,
    /// Address and netmask.
    pub ipv4: Vec<(Ipv4Addr, Ipv4Addr)>,
    /// Address and prefix length.
    pub ipv6: Vec<(Ipv6Addr, u8)>,
    /// The IPv4 default gateway reached through this interface, if any.
    pub ipv4_gateway: Option<Ipv4Addr>,
}

/// Default IPv4 gateways per interface, from the kernel's routing table.
fn default_gateways() -> Vec<(String, Ipv4Addr)> {
    let Ok(table) = std::fs::read_to_string("/proc/net/route") else {
        return Vec::new();
    };
    parse_route_table(&table)
}

fn parse_route_table(table: &str) -> Vec<(String, Ipv4Addr)> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (iface, dest, gw) = (f.first()?, f.get(1)?, f.get(2)?);
            if *dest != "00000000" {
                return None;
            }
            // The kernel prints the address as a host-order (little-endian) u32.
            let raw = u32::from_str_radix(gw, 16).ok()?;
            let addr = Ipv4Addr::from(raw.swap_bytes());
            (!addr.is_unspecified()).then(|| ((*iface).to_owned(), addr))
        })
        .collect()
}

pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// The name servers of the resolver (`nameserver` lines of /etc/resolv.conf).
/// Reads a file: call it off the async runtime.
pub fn name_servers() -> Vec<String> {
    std::fs::read_to_string("/etc/resolv.conf")
        .map(|text| parse_name_servers(&text))
        .unwrap_or_default()
}

fn parse_name_servers(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|rest| rest.split_whitespace().next())
        .filter(|a| a.parse::<std::net::IpAddr>().is_ok())
        .map(str::to_owned)
        .collect()
}

/// The link speed the kernel reports for an interface, in Mbit/s; none when
/// it does not know (virtual interfaces, link down). Reads sysfs: call it off
/// the async runtime.
pub fn link_speed_mbps(name: &str) -> Option<u32> {
    if name.contains('/') || name.starts_with('.') {
        return None;
    }
    let text = std::fs::read_to_string(format!("/sys/class/net/{name}/speed")).ok()?;
    text.trim()
        .parse::<i64>()
        .ok()
        .filter(|s| *s > 0)
        .and_then(|s| u32::try_from(s).ok())
}

/// The BMC's interfaces, sorted by name. Reads the kernel (cheap, no I/O wait).
pub fn interfaces() -> Vec<HostInterface> {
    let mut by_name: BTreeMap<String, HostInterface> = BTreeMap::new();
    let Ok(addrs) = getifaddrs() else {
        return Vec::new();
    };
    for a in addrs {
        let entry = by_name
            .entry(a.interface_name.clone())
            .or_insert_with(|| HostInterface {
                name: a.interface_name.clone(),
                ..HostInterface::default()
            });
        entry.up = a.flags.contains(InterfaceFlags::IFF_UP);
        entry.running = a.flags.contains(InterfaceFlags::IFF_RUNNING);
        entry.loopback = a.flags.contains(InterfaceFlags::IFF_LOOPBACK);
        let Some(addr) = a.address else { continue };
        if let Some(link) = addr.as_link_addr() {
            if let Some(mac) = link.addr() {
                if mac != [0; 6] {
                    entry.mac_address = Some(
                        mac.iter()
                            .map(|b| format!("{b:02X}"))
                            .collect::<Vec<_>>()
                            .join(":"),
                    );
                }
            }
        } else if let Some(v4) = addr.as_sockaddr_in() {
            let mask = a
                .netmask
                .as_ref()
                .and_then(|m| m.as_sockaddr_in())
                .map(|m| m.ip())
                .unwrap_or(Ipv4Addr::UNSPECIFIED);
            entry.ipv4.push((v4.ip(), mask));
        } else if let Some(v6) = addr.as_sockaddr_in6() {
            let prefix = a
                .netmask
                .as_ref()
                .and_then(|m| m.as_sockaddr_in6())
                .map(|m| u128::from(m.ip()).count_ones() as u8)
                .unwrap_or(128);
            entry.ipv6.push((v6.ip(), prefix));
        }
    }
    for (iface, gw) in default_gateways() {
        if let Some(i) = by_name.get_mut(&iface) {
            i.ipv4_gateway.get_or_insert(gw);
        }
    }
    by_name.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolver_name_servers() {
        let text = "# generated\nsearch lab\nnameserver 10.0.0.2\nnameserver  fd00::53 # v6\nnameserver bogus\noptions ndots:2\n";
        assert_eq!(parse_name_servers(text), vec!["10.0.0.2", "fd00::53"]);
        assert_eq!(link_speed_mbps("../etc"), None);
    }

    #[test]
    fn loopback_is_seen() {
        let ifs = interfaces();
        let lo = ifs.iter().find(|i| i.loopback).expect("a loopback interface");
        assert!(lo.ipv4.iter().any(|(a, _)| a.is_loopback()));
        assert!(!host_name().is_empty());
    }

    #[test]
    fn reads_default_gateways_from_the_route_table() {
        let table = "Iface\tDestination\tGateway \tFlags\n\
                     eth0\t00000000\t0102A8C0\t0003\n\
                     eth0\t0002A8C0\t00000000\t0001\n";
        assert_eq!(
            parse_route_table(table),
            vec![("eth0".to_owned(), Ipv4Addr::new(192, 168, 2, 1))]
        );
    }
}
