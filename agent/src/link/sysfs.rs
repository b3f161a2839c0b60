//! Link state read from `/sys/class/net/<if>/`: the fallback when netlink
//! cannot be used (fixture sys roots, containers), and the only place the
//! link speed comes from, since rtnetlink does not carry it.

use super::{LinkState, OperState};
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// `IFF_UP` in `flags`: the administrator enabled the interface.
const IFF_UP: u32 = 0x1;

/// The longest attribute value read here is a 20-digit `carrier_changes` and
/// its newline; anything longer is not the attribute we expect.
const ATTRIBUTE_MAX: usize = 32;

/// Reads one interface's link state from `<sys_root>/class/net/<name>/`.
///
/// An interface that does not exist, or vanished while being read, is an
/// error of kind [`io::ErrorKind::NotFound`]; callers treat it as removed.
pub fn read_link(sys_root: &Path, name: &str) -> io::Result<LinkState> {
    let mut path = interface_dir(sys_root, name)?;
    let mut buffer = [0; ATTRIBUTE_MAX];

    // `flags` is always there for a live interface, so its absence means the
    // interface is gone. Asking for it first spares a separate check that
    // the directory exists.
    let flags = match read_attribute(&mut path, "flags", &mut buffer) {
        Ok(flags) => flags,
        Err(error)
            if matches!(
                error.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            return Err(vanished(&path));
        }
        Err(error) => return Err(error),
    };
    let flags = parse_flags(flags).ok_or_else(|| invalid(&path, "flags", flags))?;

    // The attributes below may be missing in a fixture tree; one that is
    // missing on a real system means the interface vanished mid-read, which
    // is checked at the end rather than reported as a dead link.
    let mut missing = false;

    // The kernel refuses to read `carrier` (EINVAL) while the interface is
    // administratively down; fixtures stand for that by leaving it out.
    let carrier = match read_attribute(&mut path, "carrier", &mut buffer) {
        Ok("1") => true,
        Ok("0") => false,
        Ok(other) => return Err(invalid(&path, "carrier", other)),
        Err(error) if error.kind() == io::ErrorKind::InvalidInput => false,
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            missing = true;
            false
        }
        Err(error) => return Err(error),
    };

    let oper = match read_attribute(&mut path, "operstate", &mut buffer) {
        Ok(word) => OperState::from_word(word),
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            missing = true;
            OperState::Unknown
        }
        Err(error) => return Err(error),
    };

    let carrier_changes: u64 = match read_attribute(&mut path, "carrier_changes", &mut buffer) {
        Ok(count) => count
            .parse()
            .map_err(|_| invalid(&path, "carrier_changes", count))?,
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            missing = true;
            0
        }
        Err(error) => return Err(error),
    };

    let speed_mbps = speed_at(&mut path, &mut buffer);

    if missing && !path.join("flags").exists() {
        return Err(vanished(&path));
    }
    Ok(LinkState {
        admin_up: flags & IFF_UP != 0,
        carrier,
        oper,
        carrier_changes,
        speed_mbps,
    })
}

/// The link speed in Mbps, or `None` when the interface does not report one:
/// it is down, virtual, gone, or its driver does not know.
pub fn read_speed(sys_root: &Path, name: &str) -> Option<u64> {
    let mut path = interface_dir(sys_root, name).ok()?;
    speed_at(&mut path, &mut [0; ATTRIBUTE_MAX])
}

/// The names of every interface under `<sys_root>/class/net`, sorted.
pub fn list_interfaces(sys_root: &Path) -> io::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in fs::read_dir(sys_root.join("class").join("net"))? {
        let entry = entry?;
        // Interfaces are symlinks in sysfs and directories in fixtures. The
        // bonding driver adds a plain file, `bonding_masters`, beside them.
        if entry.file_type()?.is_file() {
            continue;
        }
        // Lossy, as the procfs source is, so the names of both sources agree.
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    names.sort_unstable();
    Ok(names)
}

/// `<sys_root>/class/net/<name>`, refusing names that would leave it: the
/// kernel never names an interface `.`, `..` or with a `/`.
fn interface_dir(sys_root: &Path, name: &str) -> io::Result<PathBuf> {
    let dir = sys_root.join("class").join("net");
    if name.is_empty() || name == "." || name == ".." || name.contains('/') {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{}: no interface is named {name:?}", dir.display()),
        ));
    }
    Ok(dir.join(name))
}

fn speed_at(path: &mut PathBuf, buffer: &mut [u8; ATTRIBUTE_MAX]) -> Option<u64> {
    // Down links and virtual devices refuse the read (EINVAL), so every
    // error means "no speed".
    let text = read_attribute(path, "speed", buffer).ok()?;
    parse_speed(text)
}

/// Parses `speed`. The kernel prints `-1` for an unknown speed; drivers that
/// print it unsigned give 4294967295, and older ones that fill only the 16-bit
/// field give 65535. Some print 0 while the link is down.
fn parse_speed(text: &str) -> Option<u64> {
    let speed: i64 = text.parse().ok()?;
    match speed {
        ..=0 | 65_535 | 4_294_967_295 => None,
        mbps => Some(mbps as u64),
    }
}

/// Parses `flags`, printed by the kernel as `0x%x`.
fn parse_flags(text: &str) -> Option<u32> {
    let hex = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))?;
    u32::from_str_radix(hex, 16).ok()
}

/// Reads the attribute file `name` in the directory `dir` into `buffer` and
/// returns its value without the trailing newline. `dir` is borrowed mutably
/// only to build the file's path in place; it is as it was on return.
///
/// A tick reads five attributes of every interface, so this reads into the
/// caller's stack buffer rather than allocating a string for each.
fn read_attribute<'b>(
    dir: &mut PathBuf,
    name: &str,
    buffer: &'b mut [u8; ATTRIBUTE_MAX],
) -> io::Result<&'b str> {
    dir.push(name);
    let result = read_small(dir, buffer);
    let result =
        result.map_err(|error| io::Error::new(error.kind(), format!("{}: {error}", dir.display())));
    dir.pop();
    let length = result?;
    let text = std::str::from_utf8(&buffer[..length])
        .map_err(|_| invalid(dir, name, &String::from_utf8_lossy(&buffer[..length])))?;
    Ok(text.trim_end())
}

/// Reads a whole file of at most [`ATTRIBUTE_MAX`] bytes.
fn read_small(path: &Path, buffer: &mut [u8; ATTRIBUTE_MAX]) -> io::Result<usize> {
    let mut file = File::open(path)?;
    let mut filled = 0;
    loop {
        if filled == buffer.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("longer than the {ATTRIBUTE_MAX} bytes expected"),
            ));
        }
        match file.read(&mut buffer[filled..]) {
            Ok(0) => return Ok(filled),
            Ok(n) => filled += n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
}

fn invalid(dir: &Path, name: &str, value: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{}/{name}: unexpected value {value:?}", dir.display()),
    )
}

fn vanished(dir: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{}: no such interface", dir.display()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixtures() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sys")
    }

    #[test]
    fn reads_an_up_link() {
        assert_eq!(
            read_link(&fixtures(), "eth0").unwrap(),
            LinkState {
                admin_up: true,
                carrier: true,
                oper: OperState::Up,
                carrier_changes: 2,
                speed_mbps: Some(10_000),
            }
        );
    }

    #[test]
    fn reads_an_admin_down_link_without_a_carrier_file() {
        let state = read_link(&fixtures(), "eth1").unwrap();
        assert_eq!(
            state,
            LinkState {
                admin_up: false,
                carrier: false,
                oper: OperState::Down,
                carrier_changes: 5,
                speed_mbps: None,
            }
        );
        assert!(!state.is_up());
    }

    #[test]
    fn reads_a_lower_layer_down_link() {
        let state = read_link(&fixtures(), "swp1").unwrap();
        assert_eq!(
            state,
            LinkState {
                admin_up: true,
                carrier: false,
                oper: OperState::LowerLayerDown,
                carrier_changes: 7,
                speed_mbps: None,
            }
        );
        assert!(!state.is_up());
    }

    #[test]
    fn an_unknown_speed_and_missing_carrier_changes_are_not_errors() {
        let state = read_link(&fixtures(), "Eth1-1").unwrap();
        assert_eq!(
            state,
            LinkState {
                admin_up: true,
                carrier: true,
                oper: OperState::Unknown,
                carrier_changes: 0,
                speed_mbps: None,
            }
        );
        assert!(state.is_up());
    }

    #[test]
    fn a_missing_interface_is_not_found() {
        for name in ["eth9", "", "..", "../net/eth0", "bonding_masters"] {
            let error = read_link(&fixtures(), name).unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::NotFound, "{name:?}: {error}");
            assert_eq!(read_speed(&fixtures(), name), None);
        }
        let error = read_link(&fixtures(), "eth9").unwrap_err();
        assert!(
            error
                .to_string()
                .ends_with("class/net/eth9: no such interface")
        );
    }

    #[test]
    fn reads_speeds() {
        assert_eq!(read_speed(&fixtures(), "eth0"), Some(10_000));
        assert_eq!(read_speed(&fixtures(), "eth1"), None);
        assert_eq!(read_speed(&fixtures(), "swp1"), None);
        assert_eq!(read_speed(&fixtures(), "Eth1-1"), None);
    }

    #[test]
    fn speed_rules() {
        assert_eq!(parse_speed("100000"), Some(100_000));
        assert_eq!(parse_speed("25000"), Some(25_000));
        for unknown in ["-1", "0", "65535", "4294967295", "", "fast"] {
            assert_eq!(parse_speed(unknown), None, "{unknown:?}");
        }
    }

    #[test]
    fn flag_rules() {
        assert_eq!(parse_flags("0x1003"), Some(0x1003));
        assert_eq!(parse_flags("0x9"), Some(0x9));
        assert_eq!(parse_flags("4099"), None);
        assert_eq!(parse_flags("0xzz"), None);
    }

    #[test]
    fn lists_interfaces_but_not_bonding_masters() {
        assert_eq!(
            list_interfaces(&fixtures()).unwrap(),
            ["Eth1-1", "eth0", "eth1", "swp1"]
        );
        let error = list_interfaces(Path::new("/nonexistent")).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn reads_the_real_loopback() {
        let sys_root = Path::new("/sys");
        if !sys_root.join("class/net/lo").exists() {
            assert!(
                std::env::var_os("CI").is_none(),
                "/sys/class/net/lo is missing"
            );
            eprintln!("skipped: /sys is not mounted here");
            return;
        }
        let lo = read_link(sys_root, "lo").unwrap();
        // The loopback driver tracks no operational state and has no speed.
        assert!(lo.admin_up, "{lo:?}");
        assert!(lo.carrier, "{lo:?}");
        assert_eq!(lo.oper, OperState::Unknown);
        assert_eq!(lo.speed_mbps, None);
        assert!(lo.is_up());
        assert!(
            list_interfaces(sys_root)
                .unwrap()
                .contains(&"lo".to_string())
        );
    }
}
