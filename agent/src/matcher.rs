//! Interface selection by glob: `["eth*", "Eth1-*", "!lo"]`. A name is chosen
//! when it matches an include and no exclude; a list of only excludes starts
//! from every interface. Resolved once per interface, never per tick.

use globset::{GlobSet, GlobSetBuilder};
use thiserror::Error;

#[derive(Debug, Error)]
#[error("bad interface glob {pattern:?}: {reason}")]
pub struct GlobError {
    /// Which entry of the list, counted from 0.
    pub index: usize,
    pub pattern: String,
    pub reason: String,
}

#[derive(Debug, Clone)]
pub struct InterfaceMatcher {
    include: GlobSet,
    exclude: GlobSet,
    include_all: bool,
    patterns: Vec<String>,
}

impl InterfaceMatcher {
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<InterfaceMatcher, GlobError> {
        let mut include = GlobSetBuilder::new();
        let mut exclude = GlobSetBuilder::new();
        let mut includes = 0;
        for (index, pattern) in patterns.iter().enumerate() {
            let pattern = pattern.as_ref();
            let (negated, glob) = match pattern.strip_prefix('!') {
                Some(rest) => (true, rest),
                None => (false, pattern),
            };
            if glob.is_empty() {
                return Err(GlobError {
                    index,
                    pattern: pattern.to_string(),
                    reason: "empty pattern".into(),
                });
            }
            // Interface names hold no path separators, but NX-OS names like
            // `Ethernet1/1` do: `*` must cross `/`.
            let glob = globset::GlobBuilder::new(glob)
                .literal_separator(false)
                .build()
                .map_err(|e| GlobError {
                    index,
                    pattern: pattern.to_string(),
                    reason: e.kind().to_string(),
                })?;
            if negated {
                exclude.add(glob);
            } else {
                include.add(glob);
                includes += 1;
            }
        }
        let build = |b: GlobSetBuilder| b.build().expect("globs already validated");
        Ok(InterfaceMatcher {
            include: build(include),
            exclude: build(exclude),
            include_all: includes == 0,
            patterns: patterns.iter().map(|p| p.as_ref().to_string()).collect(),
        })
    }

    /// Every interface.
    pub fn all() -> InterfaceMatcher {
        InterfaceMatcher::new::<&str>(&[]).expect("empty list is valid")
    }

    pub fn matches(&self, name: &str) -> bool {
        (self.include_all || self.include.is_match(name)) && !self.exclude.is_match(name)
    }

    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }
}

impl PartialEq for InterfaceMatcher {
    fn eq(&self, other: &Self) -> bool {
        self.patterns == other.patterns
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn includes_and_excludes() {
        let m = InterfaceMatcher::new(&["eth*", "Eth1-*", "swp*", "!eth9"]).unwrap();
        assert!(m.matches("eth0"));
        assert!(m.matches("Eth1-48"));
        assert!(m.matches("swp12"));
        assert!(!m.matches("eth9"));
        assert!(!m.matches("lo"));
        assert!(!m.matches("veth0"));
    }

    #[test]
    fn only_excludes_start_from_everything() {
        let m = InterfaceMatcher::new(&["!lo"]).unwrap();
        assert!(m.matches("eth0"));
        assert!(!m.matches("lo"));
    }

    #[test]
    fn star_crosses_slashes_in_nxos_names() {
        let m = InterfaceMatcher::new(&["Ethernet1/*"]).unwrap();
        assert!(m.matches("Ethernet1/12"));
    }

    #[test]
    fn bad_glob_names_its_index() {
        let e = InterfaceMatcher::new(&["eth*", "[eth"]).unwrap_err();
        assert_eq!(e.index, 1);
        assert!(e.to_string().contains("[eth"));
    }
}
