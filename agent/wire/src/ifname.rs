//! Interface names in their two spellings on a Nexus switch: NX-OS's
//! `Ethernet1/1` and the bash shell's `Eth1-1`. A config, a trace query or
//! an event may use either, and both binaries must recognise both.

/// The Linux netdev name NX-OS gives an interface in the bash shell:
/// `Ethernet1/1` is `Eth1-1`, `Ethernet1/1/2` is `Eth1-1-2`, `port-channel10`
/// is `po10`. Other names (`Vlan10`, `mgmt0`, `loopback0`) are unchanged.
pub fn linux_name(nxos: &str) -> String {
    if let Some(rest) = nxos.strip_prefix("Ethernet") {
        format!("Eth{}", rest.replace('/', "-"))
    } else if let Some(rest) = nxos.strip_prefix("port-channel") {
        format!("po{rest}")
    } else {
        nxos.to_string()
    }
}

/// The full NX-OS name of an interface given in any form: the Linux
/// `Eth1-1`, the CLI's short `Eth1/1` and `Ethernet1/1` are all
/// `Ethernet1/1`; `po10` and `Po10` are `port-channel10`.
pub fn nxos_name(name: &str) -> String {
    let digits = |s: &str| {
        s.starts_with(|c: char| c.is_ascii_digit())
            && s.bytes()
                .all(|b| b.is_ascii_digit() || b == b'-' || b == b'/')
    };
    if let Some(rest) = name.strip_prefix("Eth")
        && digits(rest)
    {
        format!("Ethernet{}", rest.replace('-', "/"))
    } else if let Some(rest) = name.strip_prefix("po").or_else(|| name.strip_prefix("Po"))
        && digits(rest)
    {
        format!("port-channel{rest}")
    } else {
        name.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_convert_both_ways() {
        for (nxos, linux) in [
            ("Ethernet1/1", "Eth1-1"),
            ("Ethernet1/49/2", "Eth1-49-2"),
            ("port-channel10", "po10"),
            ("Vlan10", "Vlan10"),
            ("mgmt0", "mgmt0"),
        ] {
            assert_eq!(linux_name(nxos), linux);
            assert_eq!(nxos_name(linux), nxos);
            assert_eq!(nxos_name(nxos), nxos);
        }
        assert_eq!(nxos_name("Eth1/49"), "Ethernet1/49");
        assert_eq!(nxos_name("Po7"), "port-channel7");
        assert_eq!(nxos_name("eth0"), "eth0");
        assert_eq!(nxos_name("Eth"), "Eth");
        assert_eq!(nxos_name("power0"), "power0");
    }
}
