#!/usr/bin/env bash
# Builds every package into target/packages/ (CARGO_TARGET_DIR/packages when
# that is set) from static musl binaries:
#
#   hopwatch-VERSION-1.x86_64.rpm             the agent: NX-OS bash shell,
#                                             RHEL family, any x86_64 Linux
#   hopwatch_VERSION-1_amd64.deb              the agent: Cumulus Linux, SONiC,
#                                             Debian family
#   hopwatch-collector-VERSION-1.x86_64.rpm   the collector, RHEL family
#   hopwatch-collector_VERSION-1_amd64.deb    the collector, Debian family
#
# and prints each package's size and installed size. Needs cargo with the
# x86_64-unknown-linux-musl target, a musl C compiler (SQLite and ring are C),
# rpmbuild and dpkg-deb. The version is the workspace's.
set -euo pipefail
cd "$(dirname "$0")/.."

target=x86_64-unknown-linux-musl
target_dir=${CARGO_TARGET_DIR:-target}
out=$target_dir/packages
work=$target_dir/package-build

need() {
  if ! command -v "$1" >/dev/null 2>&1; then
    echo "build.sh: '$1' not found; $2" >&2
    exit 1
  fi
}
need cargo "install Rust with rustup (https://rustup.rs)"
need musl-gcc "install musl-tools (Debian) or musl-gcc (RHEL, EPEL): SQLite and ring compile C for the musl target"
need rpmbuild "install rpm (Debian: apt-get install rpm) or rpm-build (RHEL)"
need dpkg-deb "install dpkg (Debian) or dpkg from EPEL (RHEL)"
if command -v rustup >/dev/null 2>&1 && ! rustup target list --installed | grep -qx "$target"; then
  echo "build.sh: the Rust target $target is not installed; run: rustup target add $target" >&2
  exit 1
fi

# [workspace.package] version in Cargo.toml.
version=$(awk '
  /^\[/ { section = $0 }
  section == "[workspace.package]" && $1 == "version" { gsub(/"/, "", $3); print $3; exit }
' Cargo.toml)
if [ -z "$version" ]; then
  echo "build.sh: no version under [workspace.package] in Cargo.toml" >&2
  exit 1
fi

step() { printf '\n==> %s\n' "$*"; }

# Two builds, not one, each naming its package: cargo unifies features over
# every package a build selects (`--bin` alone selects the whole workspace),
# and the collector's (tokio's multi-thread runtime among them) would grow
# the agent by about 60 KB.
step "Static binaries ($target)"
cargo build --release --locked --target "$target" -p hopwatch-agent --bin hopwatch
cargo build --release --locked --target "$target" -p hopwatch-collector --bin hopwatch-collector
bin=$target_dir/$target/release
for b in hopwatch hopwatch-collector; do
  if ! file "$bin/$b" | grep -Eq 'static(ally|-pie) linked'; then
    echo "build.sh: $bin/$b is not statically linked: $(file -b "$bin/$b")" >&2
    exit 1
  fi
done

step "Staging"
rm -rf "$work" "$out"
mkdir -p "$work/sources" "$out"
src=$work/sources
bash packaging/configs.sh "$src"
cp "$bin/hopwatch" "$bin/hopwatch-collector" "$src/"
cp packaging/hopwatch.init packaging/hopwatch.sysconfig packaging/hopwatch.service \
  packaging/vrf-exec packaging/hopwatch-collector.service "$src/"
cp packaging/collector-setup "$src/"
# The shipped configs must pass the shipped binaries' own checks.
"$src/hopwatch" check-config -c "$src/agent.toml"
"$src/hopwatch-collector" check-config -c "$src/collector.toml"

step "RPMs"
for spec in hopwatch hopwatch-collector; do
  rpmbuild -bb --quiet \
    --define "_topdir $(realpath "$work")/rpm" \
    --define "_sourcedir $(realpath "$src")" \
    --define "_rpmdir $(realpath "$out")" \
    --define "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm" \
    --define "pkg_version $version" \
    "packaging/$spec.spec"
done

# deb NAME: packs $work/deb/NAME (already filled) with the control files in
# packaging/deb/NAME.
deb() {
  local name=$1 tree=$work/deb/$1 kib script
  mkdir -p "$tree/DEBIAN"
  kib=$(du -sk --exclude=DEBIAN "$tree" | cut -f1)
  sed -e "s/@VERSION@/$version-1/" -e "s/@INSTALLED_SIZE@/$kib/" \
    "packaging/deb/$name/control" >"$tree/DEBIAN/control"
  install -m 0644 "packaging/deb/$name/conffiles" "$tree/DEBIAN/conffiles"
  for script in postinst prerm postrm; do
    install -m 0755 "packaging/deb/$name/$script" "$tree/DEBIAN/$script"
  done
  dpkg-deb --root-owner-group -Zxz --build "$tree" "$out/${name}_${version}-1_amd64.deb" >/dev/null
}

step ".debs"
tree=$work/deb/hopwatch
install -D -m 0755 "$src/hopwatch" "$tree/usr/bin/hopwatch"
install -D -m 0640 "$src/agent.toml" "$tree/etc/hopwatch/agent.toml"
install -D -m 0644 "$src/hopwatch.sysconfig" "$tree/etc/sysconfig/hopwatch"
install -D -m 0755 "$src/hopwatch.init" "$tree/etc/init.d/hopwatch"
install -D -m 0644 "$src/hopwatch.service" "$tree/lib/systemd/system/hopwatch.service"
install -D -m 0755 "$src/vrf-exec" "$tree/usr/libexec/hopwatch/vrf-exec"
install -d -m 0750 "$tree/var/lib/hopwatch"
deb hopwatch

tree=$work/deb/hopwatch-collector
install -D -m 0755 "$src/hopwatch-collector" "$tree/usr/bin/hopwatch-collector"
install -D -m 0644 "$src/collector.toml" "$tree/etc/hopwatch/collector.toml"
install -D -m 0644 "$src/hopwatch-collector.service" "$tree/lib/systemd/system/hopwatch-collector.service"
install -D -m 0755 "$src/collector-setup" "$tree/usr/libexec/hopwatch-collector/setup"
deb hopwatch-collector

step "Packages in $out"
mib() { awk -v b="$1" 'BEGIN { printf "%.2f MiB", b / 1048576 }'; }
agent_rpm=$out/hopwatch-$version-1.x86_64.rpm
for rpm in "$agent_rpm" "$out/hopwatch-collector-$version-1.x86_64.rpm"; do
  size=$(stat -c %s "$rpm")
  installed=$(rpm -qp --qf '%{SIZE}' "$rpm")
  printf '%-44s %9d bytes (%s), installed %9d bytes (%s)\n' \
    "$(basename "$rpm")" "$size" "$(mib "$size")" "$installed" "$(mib "$installed")"
done
for debfile in "$out/hopwatch_${version}-1_amd64.deb" "$out/hopwatch-collector_${version}-1_amd64.deb"; do
  size=$(stat -c %s "$debfile")
  installed=$(($(dpkg-deb -f "$debfile" Installed-Size) * 1024))
  printf '%-44s %9d bytes (%s), installed %9d bytes (%s)\n' \
    "$(basename "$debfile")" "$size" "$(mib "$size")" "$installed" "$(mib "$installed")"
done

limit=$((2 * 1024 * 1024))
size=$(stat -c %s "$agent_rpm")
if [ "$size" -le "$limit" ]; then
  echo "agent RPM: $(mib "$size") against the target of at most 2 MiB: met"
else
  echo "agent RPM: $(mib "$size") against the target of at most 2 MiB: missed"
fi
