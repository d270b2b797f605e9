#!/bin/sh
# SPDX-License-Identifier: MIT
# `run` refuses what it cannot run before the CPU starts, and says which
# option is wrong: missing, unreadable or oversized files, an aux image
# with VZ's 16 KiB header still in front, impossible --ram and --cpus,
# bad ECIDs and machine identifiers. And what it accepts, it runs: the
# header skipped with --aux-skip-header, ECIDs from plists and JSON.
set -u
[ "${HAVE_SELFTEST_FIRMWARE:-0}" = 1 ] || { echo "no self-test firmware in this build"; exit 77; }

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
out="$dir/out"
fw="$SELFTEST_FIRMWARE"
failures=0

fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# expect_refusal NAME PATTERN ARGS...: exit status 2, PATTERN in the output,
# and the CPU never started.
expect_refusal() {
    name=$1 pattern=$2
    shift 2
    "$EXAMPLE" "$@" >"$out" 2>&1
    status=$?
    if [ "$status" != 2 ]; then
        fail "$name: exit status $status, expected 2"; sed 's/^/    /' "$out"; return
    fi
    if ! grep -q -- "$pattern" "$out"; then
        fail "$name: no '$pattern' in:"; sed 's/^/    /' "$out"; return
    fi
    if grep -q "^booting" "$out"; then
        fail "$name: the CPU started"; return
    fi
    echo "ok: $name: $(head -n 1 "$out")"
}

# expect_run NAME PATTERN ARGS...: exit status 0 and PATTERN in the output.
expect_run() {
    name=$1 pattern=$2
    shift 2
    "$EXAMPLE" "$@" >"$out" 2>&1
    status=$?
    if [ "$status" != 0 ] || ! grep -q -- "$pattern" "$out"; then
        fail "$name: exit status $status, looking for '$pattern' in:"; sed 's/^/    /' "$out"; return
    fi
    echo "ok: $name"
}

"$EXAMPLE" images --out "$dir/img" >/dev/null || { echo "images failed"; exit 1; }
"$EXAMPLE" images --out "$dir/vz" --vz-header >/dev/null || { echo "images --vz-header failed"; exit 1; }
root="$dir/img/root.img" aux="$dir/img/aux.img"

# The smallest images the self-test accepts are the smallest `images` writes.
expect_refusal "images too small" "--root-size 63K: a multiple of 512 bytes, at least 64K" \
    images --out "$dir/small" --root-size 63K
expect_refusal "aux image too small" "--aux-size 32K: a multiple of 512 bytes, at least 64K" \
    images --out "$dir/small" --aux-size 32K
"$EXAMPLE" images --out "$dir/small" --root-size 64K --aux-size 64K >/dev/null ||
    { echo "images of 64K failed"; exit 1; }
expect_run "the smallest images" "all [0-9]* checks passed" \
    run --firmware "$fw" --aux "$dir/small/aux.img" --root "$dir/small/root.img"

# Required options and files.
expect_refusal "no --firmware" "--firmware FILE is required" run --aux "$aux" --root "$root"
expect_refusal "no --aux" "--aux FILE is required" run --firmware "$fw" --root "$root"
expect_refusal "no --root" "--root FILE is required" run --firmware "$fw" --aux "$aux"
expect_refusal "missing firmware" "--firmware $dir/nope: No such file" \
    run --firmware "$dir/nope" --aux "$aux" --root "$root"
expect_refusal "missing aux" "--aux $dir/nope: No such file" \
    run --firmware "$fw" --aux "$dir/nope" --root "$root"
expect_refusal "missing root" "--root $dir/nope: No such file" \
    run --firmware "$fw" --aux "$aux" --root "$dir/nope"
expect_refusal "root is a directory" "--root $dir: not a regular file" \
    run --firmware "$fw" --aux "$aux" --root "$dir"
head -c 1048577 /dev/zero >"$dir/big.bin"
expect_refusal "firmware too big" "--firmware $dir/big.bin: 1048577 bytes" \
    run --firmware "$dir/big.bin" --aux "$aux" --root "$root"
: >"$dir/empty.bin"
expect_refusal "empty firmware" "--firmware $dir/empty.bin: 0 bytes" \
    run --firmware "$dir/empty.bin" --aux "$aux" --root "$root"
head -c 1000 /dev/zero >"$dir/odd.img"
expect_refusal "root not a multiple of 512" "--root $dir/odd.img" \
    run --firmware "$fw" --aux "$aux" --root "$dir/odd.img"

# Unreadable files: as root, permissions do not stop us, so run as nobody.
cp "$root" "$dir/locked.img"
chmod 000 "$dir/locked.img"
chmod 755 "$dir"
if [ "$(id -u)" = 0 ]; then
    as_nobody="setpriv --reuid=65534 --regid=65534 --clear-groups"
else
    as_nobody=""
fi
if $as_nobody "$EXAMPLE" version >/dev/null 2>&1; then
    $as_nobody "$EXAMPLE" run --firmware "$fw" --aux "$aux" --aux-read-only --root "$dir/locked.img" \
        >"$out" 2>&1
    status=$?
    if [ "$status" = 2 ] && grep -q -- "--root $dir/locked.img: Permission denied" "$out"; then
        echo "ok: unreadable root"
    else
        fail "unreadable root: status $status"; sed 's/^/    /' "$out"
    fi
else
    echo "skip: unreadable root (cannot run the example as another user here)"
fi

# VZ's aux header.
expect_refusal "untrimmed aux" "untrimmed VZ aux image" \
    run --firmware "$fw" --aux "$dir/vz/aux.img" --root "$dir/vz/root.img"
expect_refusal "untrimmed aux names the option" "--aux-skip-header" \
    run --firmware "$fw" --aux "$dir/vz/aux.img" --root "$dir/vz/root.img"
# The ECID record where untrimmed VZ aux files have it.
head -c 1048576 /dev/zero >"$dir/vzaux.img"
printf '\004ECID\002\010' | dd of="$dir/vzaux.img" bs=1 seek=$((0x6c804)) conv=notrunc 2>/dev/null
expect_refusal "untrimmed VZ aux (ECID record)" "ECID record is at file offset 0x6c804" \
    run --firmware "$fw" --aux "$dir/vzaux.img" --root "$root"
expect_run "--aux-skip-header" "all [0-9]* checks passed" \
    run --firmware "$fw" --aux "$dir/vz/aux.img" --root "$dir/vz/root.img" --aux-skip-header

# Impossible machines.
for ram in 0 1000 12345678 63M 2T 1e30 abc -1G 256Q; do
    expect_refusal "--ram $ram" "--ram $ram" run --firmware "$fw" --aux "$aux" --root "$root" --ram "$ram"
done
# Each size check by its own message: the values above mostly stop at the
# first, and the host's memory would refuse 2T if the CPU's limit did not.
expect_refusal "--ram below the minimum" "--ram 63M: at least 64M" \
    run --firmware "$fw" --aux "$aux" --root "$root" --ram 63M
expect_refusal "--ram not 16K-aligned" "--ram 67108865: must be a multiple of 16K" \
    run --firmware "$fw" --aux "$aux" --root "$root" --ram 67108865
expect_refusal "--ram beyond the CPU" "--ram 2T: .* physical address space; at most 1022 GiB" \
    run --firmware "$fw" --aux "$aux" --root "$root" --ram 2T
if [ "$(awk '/^MemTotal:/ { print int($2 / 1048576) }' /proc/meminfo)" -lt 1020 ]; then
    expect_refusal "--ram beyond the host" "more than this host" \
        run --firmware "$fw" --aux "$aux" --root "$root" --ram 1020G
fi
for cpus in 0 33 -1; do
    expect_refusal "--cpus $cpus" "--cpus $cpus" run --firmware "$fw" --aux "$aux" --root "$root" --cpus "$cpus"
done
expect_refusal "--aes-key select" "--aes-key 8=00" run --firmware "$fw" --aux "$aux" --root "$root" --aes-key 8=00
expect_refusal "--aes-key length" "the key is 30 hex digits" \
    run --firmware "$fw" --aux "$aux" --root "$root" --aes-key 1=000000000000000000000000000000
expect_refusal "--aes-key hex" "'zz' is not a hex byte" \
    run --firmware "$fw" --aux "$aux" --root "$root" --aes-key 2=zz000000000000000000000000000000
expect_refusal "--ecid junk" "--ecid 12z" run --firmware "$fw" --aux "$aux" --root "$root" --ecid 12z
expect_refusal "--ecid and --machine-id" "not both" \
    run --firmware "$fw" --aux "$aux" --root "$root" --ecid 1 --machine-id "$dir/x"

# Machine identifiers. This one is a public example of a VZ machine
# identifier (a binary plist whose ECID is a 16-byte integer).
mid=YnBsaXN0MDDRAQJURUNJRBQAAAAAAAAAAMjHvuaMqSRuCAsQAAAAAAAAAQEAAAAAAAAAAwAAAAAAAAAAAAAAAAAAACE=
ecid=0xc8c7bee68ca9246e
echo "$mid" | base64 -d >"$dir/MachineIdentifier"
printf '{\n  "cpus": 2, "storage": [{"type": "disk"}],\n  "machineId": "%s",\n  "ram": 4294967296\n}\n' \
    "$mid" >"$dir/macosvm.json"
printf '{"machineIdentifier":"%s","os":"macOS"}' "$mid" >"$dir/tart.json"
cat >"$dir/id.plist" <<PLIST
<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<key>ECID</key>
	<integer>1311768467294899695</integer>
</dict>
</plist>
PLIST
cat >"$dir/config.plist" <<PLIST
<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0">
<dict>
	<key>System</key>
	<dict>
		<key>MachineIdentifier</key>
		<data>$mid</data>
	</dict>
</dict>
</plist>
PLIST
expect_run "--machine-id binary plist" "ECID $ecid" \
    run --firmware "$fw" --aux "$aux" --root "$root" --machine-id "$dir/MachineIdentifier"
expect_run "--machine-id macosvm JSON" "ECID $ecid" \
    run --firmware "$fw" --aux "$aux" --root "$root" --machine-id "$dir/macosvm.json"
expect_run "--machine-id Tart JSON" "ECID $ecid" \
    run --firmware "$fw" --aux "$aux" --root "$root" --machine-id "$dir/tart.json"
expect_run "--machine-id XML plist" "ECID 0x1234567890abcdef" \
    run --firmware "$fw" --aux "$aux" --root "$root" --machine-id "$dir/id.plist"
expect_run "--machine-id nested plist data" "ECID $ecid" \
    run --firmware "$fw" --aux "$aux" --root "$root" --machine-id "$dir/config.plist"
expect_run "--ecid hex" "ECID 0x00000000deadbeef" \
    run --firmware "$fw" --aux "$aux" --root "$root" --ecid 0xdeadbeef
expect_refusal "--machine-id missing" "--machine-id" \
    run --firmware "$fw" --aux "$aux" --root "$root" --machine-id "$dir/nope.plist"
printf '{"machineId": 5}' >"$dir/bad.json"
expect_refusal "--machine-id JSON without an identifier" "without a machineId" \
    run --firmware "$fw" --aux "$aux" --root "$root" --machine-id "$dir/bad.json"
printf '{"machineId": "bm90IGEgcGxpc3Q="}' >"$dir/bad2.json"
expect_refusal "--machine-id not a plist inside" "not a base64 property list with an ECID" \
    run --firmware "$fw" --aux "$aux" --root "$root" --machine-id "$dir/bad2.json"
printf 'hello' >"$dir/bad.txt"
expect_refusal "--machine-id neither" "neither a property list" \
    run --firmware "$fw" --aux "$aux" --root "$root" --machine-id "$dir/bad.txt"

[ "$failures" = 0 ] || { echo "$failures failures"; exit 1; }
