#!/bin/sh
# check-vmlinux.sh VMLINUX - check the properties the emulator relies on.
#
#  - no gcc clones (.isra/.constprop/.part/.cold/...): each symbol's code
#    has the prototype its DWARF/BTF says;
#  - every __mcount_loc entry is a function entry starting with the 5-byte
#    nop 0f 1f 44 00 00, and every function starting with it is listed;
#    the named notrace functions are not;
#  - four page-aligned PT_LOADs: text R+X, rodata R, data RW, bss RW;
#  - a .BTF section (BTF magic) with FUNCs for the kernel test targets.
# Exits non-zero with a message on the first failure.
set -eu

f=${1:?usage: check-vmlinux.sh VMLINUX}
fail() { echo "check-vmlinux: $f: $*" >&2; exit 1; }

# Functions that must be traceable / must not be.
TRACED="bpf_fentry_test1 bpf_fentry_test2 bpf_fentry_test3 bpf_fentry_test4
bpf_fentry_test5 bpf_fentry_test6 bpf_fentry_test7 bpf_fentry_test8
bpf_fentry_test9 bpf_modify_return_test bpf_modify_return_test2
eth_type_trans __set_task_comm bpfemu_sum8 bpfemu_call_fn8"
NOTRACE="start_kernel bpfemu_notrace_add bpf_test_run_fentry memset memcpy"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Section table: name addr off size (hex, no 0x).
readelf -SW "$f" | sed -n 's/^ *\[ *[0-9]*\] //p' |
	awk '{ print $1, $3, $4, $5 }' >"$tmp/sections"
sect() { awk -v n="$1" '$1 == n { print $'"$2"' }' "$tmp/sections"; }
# Low 40 bits of a hex address as a number: sh arithmetic is signed 64-bit,
# and kernel addresses (0xffffffff8...) overflow it; offsets in the image
# are small, so differences of the low bits are exact.
lo() { echo $((0x${1#"${1%??????????}"})); }

# Function symbols: addr name (addr 16 hex digits).
readelf -sW "$f" | awk '$4 == "FUNC" && $7 != "UND" { print $2, $8 }' |
	sort >"$tmp/funcs"
[ -s "$tmp/funcs" ] || fail "no function symbols"

clones=$(awk '$2 ~ /\./ { print $2 }' "$tmp/funcs")
[ -z "$clones" ] || fail "gcc made clones/split parts: $(echo $clones)"

# __mcount_loc, read out of .rodata: one 8-byte address per line.
start=$(readelf -sW "$f" | awk '$8 == "__start_mcount_loc" { print $2 }')
stop=$(readelf -sW "$f" | awk '$8 == "__stop_mcount_loc" { print $2 }')
[ -n "$start" ] && [ -n "$stop" ] || fail "no __start/__stop_mcount_loc"
ro_addr=$(sect .rodata 2)
ro_off=$(sect .rodata 3)
len=$(($(lo $stop) - $(lo $start)))
[ "$len" -gt 0 ] || fail "__mcount_loc is empty"
off=$(($(lo $start) - $(lo $ro_addr) + 0x$ro_off))
od -An -v -tx8 -w8 -j "$off" -N "$len" "$f" | awk '{ print $1 }' |
	sort >"$tmp/mcount"

text_addr=$(sect .text 2)
text_off=$(sect .text 3)
awk '{ print $1 }' "$tmp/funcs" >"$tmp/faddrs"
stray=$(comm -23 "$tmp/mcount" "$tmp/faddrs")
[ -z "$stray" ] || fail "__mcount_loc entries that are not function entries: $(echo $stray)"

ntraced=0
nnotrace=0
: >"$tmp/traced"
while read -r addr name; do
	o=$(($(lo $addr) - $(lo $text_addr) + 0x$text_off))
	head=$(od -An -v -tx1 -j "$o" -N 5 "$f" | tr -d ' \n')
	if grep -qx "$addr" "$tmp/mcount"; then
		[ "$head" = 0f1f440000 ] ||
			fail "$name is in __mcount_loc but starts with $head"
		echo "$name" >>"$tmp/traced"
		ntraced=$((ntraced + 1))
	else
		[ "$head" != 0f1f440000 ] ||
			fail "$name starts with the fentry nop but is not in __mcount_loc"
		nnotrace=$((nnotrace + 1))
	fi
done <"$tmp/funcs"
for n in $TRACED; do
	grep -qx "$n" "$tmp/traced" || fail "$n must be traceable"
done
for n in $NOTRACE; do
	grep -q " $n\$" "$tmp/funcs" || fail "$n is missing"
	! grep -qx "$n" "$tmp/traced" || fail "$n must be notrace"
done

# Segments: exactly text R E, rodata R, data RW, bss RW, page-aligned.
readelf -lW "$f" | awk '$1 == "LOAD" { f = $7; if ($8 == "E") f = f "E"; print $3, f }' \
	>"$tmp/loads"
flags=$(awk '{ printf "%s ", $2 }' "$tmp/loads")
[ "$flags" = "RE R RW RW " ] || fail "PT_LOAD flags are '$flags', want 'RE R RW RW '"
awk '$1 !~ /000$/ { exit 1 }' "$tmp/loads" || fail "a PT_LOAD is not page-aligned"

# BTF: present, right magic, FUNCs for the test targets.
btf_off=$(sect .BTF 3)
[ -n "$btf_off" ] || fail "no .BTF section (pahole -J)"
magic=$(od -An -tx1 -j $((0x$btf_off)) -N 2 "$f" | tr -d ' \n')
[ "$magic" = 9feb ] || fail ".BTF has magic $magic, want 9feb"
if command -v bpftool >/dev/null 2>&1; then
	bpftool btf dump file "$f" format raw >"$tmp/btf" 2>&1 || fail "bpftool cannot read .BTF"
	for n in $TRACED; do
		grep -q "FUNC '$n'" "$tmp/btf" || fail "no BTF FUNC for $n"
	done
	# Only kinds a v5.5 kernel knows, and no kind_flag on ENUM (signed
	# enums, 6.0+): pahole runs with --skip_encoding_btf_enum64 for this.
	kinds=$(awk '/^\[/ { print $2 }' "$tmp/btf" | sort -u | grep -vxE \
		'INT|PTR|ARRAY|STRUCT|UNION|ENUM|FWD|TYPEDEF|VOLATILE|CONST|RESTRICT|FUNC|FUNC_PROTO|VAR|DATASEC' || true)
	[ -z "$kinds" ] || fail "BTF kinds newer than v5.5: $(echo $kinds)"
	! grep -q "^\[[0-9]*\] ENUM .*encoding=SIGNED" "$tmp/btf" ||
		fail "a BTF ENUM has kind_flag set (signed enum)"
fi

echo "  CHECK   $(basename "$f" .tmp): $ntraced traced, $nnotrace notrace functions, no clones; 4 PT_LOADs; .BTF"
