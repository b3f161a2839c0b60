//! What sort of link an interface is (a switch port, a veth, a bridge, …), so
//! a rule can say `kind = ["physical"]` and leave the virtual plumbing out of
//! a speed or error alert. The engine asks once per interface, when it first
//! sees it, as it matches globs: from sysfs on Linux, and from the name where
//! the counters come from NX-OS, whose names say what a port is while its
//! kernel netdevs do not.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// One sort of link. An interface is of one of these, and a bond's member
/// port is also `BondMember`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LinkKind {
    /// A port with a device behind it: a NIC, a switch ASIC's port, a
    /// management port.
    Physical,
    Veth,
    Bridge,
    /// An 802.1Q sub-interface, or an NX-OS SVI (`Vlan10`).
    Vlan,
    /// A bond (Linux) or port-channel (NX-OS).
    Bond,
    /// A port enslaved to a bond, besides its own kind.
    BondMember,
    Loopback,
    /// VXLAN, GRE, IP-in-IP, WireGuard, tun, NX-OS `nve` and `Tunnel`.
    Tunnel,
    /// None of the above (macvlan, dummy, tap, …).
    Other,
}

impl LinkKind {
    pub const ALL: [LinkKind; 9] = [
        LinkKind::Physical,
        LinkKind::Veth,
        LinkKind::Bridge,
        LinkKind::Vlan,
        LinkKind::Bond,
        LinkKind::BondMember,
        LinkKind::Loopback,
        LinkKind::Tunnel,
        LinkKind::Other,
    ];

    /// The name in config (`kind = [...]`) and in `hopwatch status`.
    pub fn name(self) -> &'static str {
        match self {
            LinkKind::Physical => "physical",
            LinkKind::Veth => "veth",
            LinkKind::Bridge => "bridge",
            LinkKind::Vlan => "vlan",
            LinkKind::Bond => "bond",
            LinkKind::BondMember => "bond_member",
            LinkKind::Loopback => "loopback",
            LinkKind::Tunnel => "tunnel",
            LinkKind::Other => "other",
        }
    }

    pub fn from_name(name: &str) -> Option<LinkKind> {
        LinkKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Every name, for the hint of an unknown one.
    pub fn names() -> String {
        LinkKind::ALL.map(LinkKind::name).join(", ")
    }
}

impl fmt::Display for LinkKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of [`LinkKind`]s: what one interface is, or what a rule names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Kinds(u16);

const _: () = assert!(LinkKind::ALL.len() <= u16::BITS as usize);

impl Kinds {
    pub const NONE: Kinds = Kinds(0);

    pub fn of(kind: LinkKind) -> Kinds {
        Kinds(1 << kind as u16)
    }

    pub fn with(self, kind: LinkKind) -> Kinds {
        Kinds(self.0 | 1 << kind as u16)
    }

    pub fn contains(self, kind: LinkKind) -> bool {
        self.0 & 1 << kind as u16 != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    fn meets(self, other: Kinds) -> bool {
        self.0 & other.0 != 0
    }

    pub fn iter(self) -> impl Iterator<Item = LinkKind> {
        LinkKind::ALL.into_iter().filter(move |&k| self.contains(k))
    }
}

impl fmt::Display for Kinds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for kind in self.iter() {
            if !first {
                f.write_str(",")?;
            }
            first = false;
            f.write_str(kind.name())?;
        }
        Ok(())
    }
}

/// A rule's `kind` list, read as its interface globs are: an interface is
/// chosen when it is of an included kind and of no excluded one (`!`); a
/// list of only exclusions starts from every kind. The default chooses all.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KindFilter {
    include: Kinds,
    exclude: Kinds,
    /// As written, for `hopwatch status`.
    patterns: Vec<String>,
}

/// A `kind` entry that names no kind, or contradicts another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindError {
    /// Which entry of the list, counted from 0.
    pub index: usize,
    pub message: String,
    pub hint: String,
}

impl KindFilter {
    pub fn new(list: &[&str]) -> Result<KindFilter, KindError> {
        let mut filter = KindFilter::default();
        for (index, &entry) in list.iter().enumerate() {
            let (excluded, name) = match entry.strip_prefix('!') {
                Some(name) => (true, name),
                None => (false, entry),
            };
            let Some(kind) = LinkKind::from_name(name.trim()) else {
                let names = LinkKind::ALL.map(LinkKind::name);
                let guess = hopwatch_wire::diag::closest(name, &names)
                    .map(|best| format!("did you mean `{best}`? "))
                    .unwrap_or_default();
                return Err(KindError {
                    index,
                    message: format!("unknown link kind `{name}`"),
                    hint: format!(
                        "{guess}kinds are {}; a leading ! excludes one",
                        LinkKind::names()
                    ),
                });
            };
            let (this, other) = if excluded {
                (&mut filter.exclude, filter.include)
            } else {
                (&mut filter.include, filter.exclude)
            };
            if other.contains(kind) {
                return Err(KindError {
                    index,
                    message: format!("link kind `{kind}` is both chosen and excluded"),
                    hint: format!("keep either `{kind}` or `!{kind}`"),
                });
            }
            *this = this.with(kind);
            filter.patterns.push(entry.to_string());
        }
        Ok(filter)
    }

    /// Whether an interface of `kinds` is chosen.
    pub fn matches(&self, kinds: Kinds) -> bool {
        (self.include.is_empty() || kinds.meets(self.include)) && !kinds.meets(self.exclude)
    }

    /// Whether it chooses every interface whatever its kind.
    pub fn is_any(&self) -> bool {
        self.include.is_empty() && self.exclude.is_empty()
    }

    /// The list as written; empty for the default, which chooses all.
    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }
}

/// How the engine finds a new interface's kind.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Classifier {
    /// From the name alone: NX-OS sources, and tests.
    #[default]
    Names,
    /// From `<sys_root>/class/net/<name>/`, falling back to the name for
    /// what sysfs does not tell.
    Sysfs(PathBuf),
}

impl Classifier {
    pub fn kinds(&self, name: &str) -> Kinds {
        match self {
            Classifier::Names => from_name(name),
            Classifier::Sysfs(root) => from_sysfs(root, name),
        }
    }
}

/// ARPHRD values (`type`) of IP tunnels: IPIP, TUNNEL6, SIT, IPGRE, IP6GRE,
/// and NONE, which tun and WireGuard devices carry.
const TUNNEL_TYPES: [u32; 6] = [768, 769, 776, 778, 823, 65534];
/// ARPHRD_LOOPBACK.
const LOOPBACK_TYPE: u32 = 772;

/// An interface's kinds from sysfs. Checked in this order, since a bridge or
/// a VLAN over a NIC has the NIC's traits too:
/// - `lo`, or `type` 772 → loopback;
/// - a `bonding/` directory or `DEVTYPE=bond` in `uevent` → bond;
/// - `bridge/` or `DEVTYPE=bridge` → bridge;
/// - `DEVTYPE=vlan` → vlan;
/// - `DEVTYPE` vxlan, geneve, wireguard, gtp, bareudp, or a tunnel `type`
///   (IPIP, SIT, GRE, tun) → tunnel;
/// - a `device` link (a bus device behind it; `DEVTYPE=wlan`/`wwan` too) →
///   physical;
/// - `iflink` naming another interface and no `lower_*` link: its peer, so a
///   veth (a macvlan or VLAN has a `lower_*` link to the device it sits on);
/// - otherwise what the name says ([`from_name`]), since a switch's front
///   panel ports are often netdevs of the ASIC's kernel module with no bus
///   device (`swp1`, `Ethernet0`, NX-OS `Eth1-1`);
///
/// and, besides, bond member when `bonding_slave/` or `master/bonding`
/// exists. An interface absent from sysfs is classified by its name.
pub fn from_sysfs(sys_root: &Path, name: &str) -> Kinds {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') {
        return from_name(name);
    }
    let dir = sys_root.join("class").join("net").join(name);
    let Ok(entries) = fs::read_dir(&dir) else {
        return from_name(name);
    };
    let present: Vec<String> = entries
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    let has = |file: &str| present.iter().any(|p| p == file);
    let devtype = read(&dir, "uevent")
        .ok()
        .and_then(|uevent| devtype(&uevent).map(str::to_string));
    let number = |file: &str| -> Option<u32> { read(&dir, file).ok()?.trim().parse().ok() };
    let link_type = number("type");
    let kind = if name == "lo" || link_type == Some(LOOPBACK_TYPE) {
        LinkKind::Loopback
    } else if has("bonding") || devtype.as_deref() == Some("bond") {
        LinkKind::Bond
    } else if has("bridge") || devtype.as_deref() == Some("bridge") {
        LinkKind::Bridge
    } else if devtype.as_deref() == Some("vlan") {
        LinkKind::Vlan
    } else if matches!(
        devtype.as_deref(),
        Some("vxlan" | "geneve" | "wireguard" | "gtp" | "bareudp")
    ) || link_type.is_some_and(|t| TUNNEL_TYPES.contains(&t))
    {
        LinkKind::Tunnel
    } else if has("device") || matches!(devtype.as_deref(), Some("wlan" | "wwan")) {
        LinkKind::Physical
    } else if is_peered(number("ifindex"), number("iflink"))
        && !present.iter().any(|p| p.starts_with("lower_"))
    {
        LinkKind::Veth
    } else {
        return bond_member(&dir, from_name(name));
    };
    bond_member(&dir, Kinds::of(kind))
}

/// `iflink` names another interface than itself, not none (0).
fn is_peered(ifindex: Option<u32>, iflink: Option<u32>) -> bool {
    matches!((ifindex, iflink), (Some(index), Some(link)) if link != 0 && link != index)
}

fn bond_member(dir: &Path, kinds: Kinds) -> Kinds {
    if dir.join("bonding_slave").is_dir() || dir.join("master").join("bonding").is_dir() {
        kinds.with(LinkKind::BondMember)
    } else {
        kinds
    }
}

/// The `DEVTYPE=` value of a `uevent` file.
fn devtype(uevent: &str) -> Option<&str> {
    uevent
        .lines()
        .find_map(|line| line.strip_prefix("DEVTYPE="))
        .map(str::trim)
}

/// A small sysfs attribute; `uevent` is the longest read, a few lines.
fn read(dir: &Path, file: &str) -> io::Result<String> {
    fs::read_to_string(dir.join(file))
}

/// An interface's kind from its name, for sources that give nothing else
/// (NX-API) and for what sysfs leaves open:
/// - `lo`, `loopback*`, `Loopback*` → loopback;
/// - `Ethernet*`, `Eth<digit>…`, `eth<digit>…`, `swp<digit>…`, `mgmt*` →
///   physical;
/// - `Vlan<digit>…`, `vlan<digit>…` → vlan;
/// - `port-channel*`, `Port-channel*`, `PortChannel*`, `po<digit>…`,
///   `bond<digit>…` → bond;
/// - `nve*`, `Tunnel*`, `tunnel*`, `vxlan*` → tunnel;
/// - `veth*` → veth; `br<digit>…`, `bridge*` → bridge;
/// - anything else → other.
///
/// A name does not say whether a port is in a port-channel, so it never
/// gives `bond_member`.
pub fn from_name(name: &str) -> Kinds {
    let numbered = |prefix: &str| {
        name.strip_prefix(prefix)
            .and_then(|rest| rest.chars().next())
            .is_some_and(|c| c.is_ascii_digit())
    };
    let starts = |prefixes: &[&str]| prefixes.iter().any(|p| name.starts_with(p));
    let kind = if name == "lo" || starts(&["loopback", "Loopback"]) {
        LinkKind::Loopback
    } else if starts(&["Ethernet", "mgmt"]) || ["Eth", "eth", "swp"].into_iter().any(numbered) {
        LinkKind::Physical
    } else if ["Vlan", "vlan"].into_iter().any(numbered) {
        LinkKind::Vlan
    } else if starts(&["port-channel", "Port-channel", "PortChannel"])
        || ["po", "bond"].into_iter().any(numbered)
    {
        LinkKind::Bond
    } else if starts(&["nve", "Tunnel", "tunnel", "vxlan"]) {
        LinkKind::Tunnel
    } else if name.starts_with("veth") {
        LinkKind::Veth
    } else if numbered("br") || name.starts_with("bridge") {
        LinkKind::Bridge
    } else {
        LinkKind::Other
    };
    Kinds::of(kind)
}

#[cfg(test)]
mod tests {
    use super::*;
    use LinkKind::*;

    fn kinds(list: &[LinkKind]) -> Kinds {
        list.iter().fold(Kinds::NONE, |set, &k| set.with(k))
    }

    #[test]
    fn names_round_trip_and_unknown_ones_list_the_kinds() {
        for kind in LinkKind::ALL {
            assert_eq!(LinkKind::from_name(kind.name()), Some(kind));
        }
        let error = KindFilter::new(&["physical", "!veht"]).unwrap_err();
        assert_eq!(error.index, 1);
        assert_eq!(error.message, "unknown link kind `veht`");
        assert!(
            error.hint.starts_with("did you mean `veth`? "),
            "{}",
            error.hint
        );
        let error = KindFilter::new(&["switchport"]).unwrap_err();
        assert!(error.hint.starts_with("kinds are "), "{}", error.hint);
        assert!(
            error.hint.contains(
                "physical, veth, bridge, vlan, bond, bond_member, loopback, tunnel, other"
            ),
            "{}",
            error.hint
        );
        let error = KindFilter::new(&["vlan", "!vlan"]).unwrap_err();
        assert_eq!(error.index, 1);
        assert!(error.message.contains("both chosen and excluded"));
    }

    #[test]
    fn a_filter_reads_as_the_globs_do() {
        let physical = KindFilter::new(&["physical"]).unwrap();
        let no_members = KindFilter::new(&["physical", "!bond_member"]).unwrap();
        let not_virtual = KindFilter::new(&["!veth", "!bridge", "!vlan"]).unwrap();
        let any = KindFilter::default();
        let port = kinds(&[Physical]);
        let member = kinds(&[Physical, BondMember]);
        let cases = [
            (&physical, port, true),
            (&physical, member, true),
            (&physical, kinds(&[Veth]), false),
            (&no_members, port, true),
            (&no_members, member, false),
            (&not_virtual, port, true),
            (&not_virtual, kinds(&[Bond]), true),
            (&not_virtual, kinds(&[Veth]), false),
            (&not_virtual, kinds(&[Vlan]), false),
            (&any, kinds(&[Other]), true),
            (&any, Kinds::NONE, true),
        ];
        for (filter, kinds, want) in cases {
            assert_eq!(filter.matches(kinds), want, "{filter:?} on {kinds}");
        }
        assert_eq!(no_members.patterns(), ["physical", "!bond_member"]);
        assert!(any.patterns().is_empty());
    }

    #[test]
    fn nx_os_and_linux_names_say_their_kind() {
        let cases = [
            ("Ethernet1/5", Physical),
            ("Ethernet1/5/2", Physical),
            ("Eth1-5", Physical),
            ("mgmt0", Physical),
            ("swp12", Physical),
            ("eth0", Physical),
            ("Vlan10", Vlan),
            ("vlan100", Vlan),
            ("port-channel10", Bond),
            ("PortChannel0001", Bond),
            ("po10", Bond),
            ("bond0", Bond),
            ("loopback0", Loopback),
            ("lo", Loopback),
            ("nve1", Tunnel),
            ("Tunnel3", Tunnel),
            ("veth0a1b", Veth),
            ("br0", Bridge),
            ("Vlanx", Other),
            ("Ethan", Other),
            ("power", Other),
            ("docker0", Other),
            ("", Other),
        ];
        for (name, want) in cases {
            assert_eq!(from_name(name), Kinds::of(want), "{name}");
        }
    }

    /// A fresh `<root>/class/net` with one directory per interface, each
    /// holding the given files (a trailing `/` makes a directory).
    struct Tree(PathBuf);

    impl Tree {
        fn new(interfaces: &[(&str, &[(&str, &str)])]) -> Tree {
            let root = std::env::temp_dir().join(format!("hopwatch-kind-{}", std::process::id()));
            let _ = fs::remove_dir_all(&root);
            for (name, files) in interfaces {
                let dir = root.join("class/net").join(name);
                fs::create_dir_all(&dir).unwrap();
                for (file, content) in *files {
                    match file.strip_suffix('/') {
                        Some(sub) => fs::create_dir_all(dir.join(sub)).unwrap(),
                        None => fs::write(dir.join(file), content).unwrap(),
                    }
                }
            }
            Tree(root)
        }
    }

    impl Drop for Tree {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn sysfs_tells_each_kind() {
        let ether = ("type", "1\n");
        let tree = Tree::new(&[
            ("lo", &[("type", "772\n")]),
            (
                "enp3s0",
                &[
                    ether,
                    ("device/", ""),
                    ("ifindex", "2\n"),
                    ("iflink", "2\n"),
                ],
            ),
            (
                "enp3s1",
                &[
                    ether,
                    ("device/", ""),
                    ("bonding_slave/", ""),
                    ("ifindex", "3\n"),
                    ("iflink", "3\n"),
                ],
            ),
            (
                "bond0",
                &[
                    ether,
                    ("bonding/", ""),
                    ("uevent", "DEVTYPE=bond\nINTERFACE=bond0\nIFINDEX=4\n"),
                ],
            ),
            (
                "br0",
                &[
                    ether,
                    ("bridge/", ""),
                    ("uevent", "DEVTYPE=bridge\nINTERFACE=br0\n"),
                ],
            ),
            (
                "enp3s0.10",
                &[
                    ether,
                    ("uevent", "DEVTYPE=vlan\nINTERFACE=enp3s0.10\n"),
                    ("lower_enp3s0/", ""),
                    ("ifindex", "6\n"),
                    ("iflink", "2\n"),
                ],
            ),
            ("vx0", &[ether, ("uevent", "DEVTYPE=vxlan\n")]),
            (
                "gre1",
                &[("type", "778\n"), ("ifindex", "8\n"), ("iflink", "0\n")],
            ),
            (
                "v0",
                &[
                    ether,
                    ("ifindex", "9\n"),
                    ("iflink", "10\n"),
                    ("uevent", "INTERFACE=v0\nIFINDEX=9\n"),
                ],
            ),
            (
                "mv0",
                &[
                    ether,
                    ("ifindex", "11\n"),
                    ("iflink", "2\n"),
                    ("lower_enp3s0/", ""),
                ],
            ),
            ("dummy0", &[ether, ("ifindex", "12\n"), ("iflink", "12\n")]),
            ("swp1", &[ether, ("ifindex", "13\n"), ("iflink", "13\n")]),
            ("wlan0", &[ether, ("uevent", "DEVTYPE=wlan\n")]),
        ]);
        let cases = [
            ("lo", kinds(&[Loopback])),
            ("enp3s0", kinds(&[Physical])),
            ("enp3s1", kinds(&[Physical, BondMember])),
            ("bond0", kinds(&[Bond])),
            ("br0", kinds(&[Bridge])),
            ("enp3s0.10", kinds(&[Vlan])),
            ("vx0", kinds(&[Tunnel])),
            ("gre1", kinds(&[Tunnel])),
            ("v0", kinds(&[Veth])),
            ("mv0", kinds(&[Other])),
            ("dummy0", kinds(&[Other])),
            // No bus device, but the name of a switch's front panel port.
            ("swp1", kinds(&[Physical])),
            ("wlan0", kinds(&[Physical])),
            // Not in sysfs: the name decides.
            ("Ethernet1/1", kinds(&[Physical])),
            ("Vlan10", kinds(&[Vlan])),
        ];
        let classifier = Classifier::Sysfs(tree.0.clone());
        for (name, want) in cases {
            assert_eq!(classifier.kinds(name), want, "{name}");
        }
    }

    #[test]
    fn the_real_loopback_is_a_loopback() {
        assert_eq!(from_sysfs(Path::new("/sys"), "lo"), kinds(&[Loopback]));
    }
}
