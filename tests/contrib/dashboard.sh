#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The Grafana dashboard cannot drift from the exporter: the JSON is valid, its layout and
# datasource input are sound, every snp_attestd_* name and every literal label value it uses is
# in docs/metrics.md, every panel query is valid PromQL (promtool), and the fleet-run PNG is a
# real PNG. Broken copies of the dashboard and the PNG must be refused. Prints TAP.
# Usage: dashboard.sh DASHBOARD.json METRICS.md FLEET-RUN.png
set -u
dash=$1
doc=$2
png=$3

if ! command -v jq >/dev/null; then
	echo "1..0 # SKIP jq not installed (scripts/setup)"
	exit 0
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/dashboard-test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

n=0
fails=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $1"; }
diag() { sed 's/^/# /' "$@" | head -n 20; }

# Metric names documented in docs/metrics.md (any `snp_attestd_...` in backticks, labels cut
# off); a histogram documented as NAME also exposes NAME_bucket, NAME_sum and NAME_count.
grep -o '`snp_attestd_[a-z0-9_]*' "$doc" | tr -d '`' | sort -u > "$tmp/documented"
sed -n 's/^| `\(snp_attestd_[a-z0-9_]*\)` | histogram |.*/\1/p' "$doc" |
	while read -r h; do printf '%s_bucket\n%s_sum\n%s_count\n' "$h" "$h" "$h"; done \
		>> "$tmp/documented"
sort -u -o "$tmp/documented" "$tmp/documented"

# undocumented_names FILE: prints every snp_attestd_* token in any string of the dashboard
# (queries, variables, titles, descriptions) that docs/metrics.md does not list.
undocumented_names() {
	jq -r '.. | strings' "$1" | grep -o 'snp_attestd_[a-zA-Z0-9_:]*' | sed 's/:*$//' | sort -u |
		comm -23 - "$tmp/documented"
}

# All PromQL expressions: panel targets and the variables' label_values() queries.
exprs() { jq -r '.. | objects | select(has("expr")) | .expr' "$1"; }

# bad_label_values FILE: literal label="value" matchers whose value docs/metrics.md never
# mentions (a misspelt reason, outcome, verdict, tcb or source matches nothing, silently).
bad_label_values() {
	exprs "$1" | grep -o '[a-z_]*=~*"[^"$]*"' | sed 's/^[a-z_]*=~*"\(.*\)"$/\1/' | sort -u |
		while read -r v; do
			[ -n "$v" ] || continue
			grep -q -w -- "$v" "$doc" || echo "$v"
		done
}

# PNG signature, an IHDR chunk first, and a size a README image can be read at.
png_ok() {
	local head w h
	head=$(od -An -tx1 -N24 "$1" 2>/dev/null | tr -d ' \n')
	[ "${head:0:16}" = 89504e470d0a1a0a ] && [ "${head:24:8}" = 49484452 ] || return 1
	w=$((16#${head:32:8}))
	h=$((16#${head:40:8}))
	[ "$w" -ge 800 ] && [ "$h" -ge 600 ] && [ "$w" -le 8000 ] && [ "$h" -le 8000 ]
}

echo "1..14"

if jq -e 'type == "object"' "$dash" >/dev/null 2>"$tmp/jq.err"; then
	ok "dashboard JSON is valid"
else
	not_ok "dashboard JSON is valid"
	diag "$tmp/jq.err"
fi

if jq -e '(.schemaVersion >= 36 and .schemaVersion <= 39) and .uid == "snp-attestd" and
	(.__inputs | any(.name == "DS_PROMETHEUS" and .type == "datasource" and
		.pluginId == "prometheus"))' "$dash" >/dev/null; then
	ok "schemaVersion 36..39, fixed uid, DS_PROMETHEUS datasource input"
else
	not_ok "schemaVersion 36..39, fixed uid, DS_PROMETHEUS datasource input"
fi

# Every panel and every target queries through the input datasource (no hard-coded uid).
bad_ds=$(jq -r '[.panels[], .templating.list[] | .. | objects | select(has("datasource")) |
	.datasource | select(.uid != "${DS_PROMETHEUS}" and .uid != "-- Grafana --")] | length' \
	"$dash")
if [ "$bad_ds" = 0 ]; then
	ok "every panel, target and variable uses \${DS_PROMETHEUS}"
else
	not_ok "every panel, target and variable uses \${DS_PROMETHEUS} ($bad_ds do not)"
fi

rows=$(jq -r '[.panels[] | select(.type == "row") | .title] | join("|")' "$dash")
missing_rows=
for want in "Fleet overview" "Per-VM drill-down" "Certificates and TCB" "KDS"; do
	case "|$rows|" in *"|$want"*) ;; *) missing_rows="$missing_rows '$want'" ;; esac
done
if [ -z "$missing_rows" ]; then
	ok "rows: fleet overview, per-VM drill-down, certificates and TCB, KDS"
else
	not_ok "rows: missing$missing_rows (have: $rows)"
fi

# Layout: unique ids, inside the 24-column grid, no two panels overlapping.
if jq -e '[.panels[] | .id] as $ids | ($ids | length) == ($ids | unique | length) and
	all(.panels[]; .gridPos.x >= 0 and .gridPos.w > 0 and .gridPos.h > 0 and
		.gridPos.x + .gridPos.w <= 24) and
	([.panels[] | .gridPos] as $g | [range(0; $g | length) as $i |
		range($i + 1; $g | length) as $j | $g[$i] as $a | $g[$j] as $b |
		select($a.x < $b.x + $b.w and $b.x < $a.x + $a.w and
			$a.y < $b.y + $b.h and $b.y < $a.y + $a.h)] | length == 0)' \
	"$dash" >/dev/null; then
	ok "panel ids unique, grid within 24 columns, no overlapping panels"
else
	not_ok "panel ids unique, grid within 24 columns, no overlapping panels"
fi

# The vm variable takes its values from a documented per-VM metric that has the vm label.
vm_metric=$(jq -r '.templating.list[] | select(.name == "vm") | .query.query' "$dash" |
	sed -n 's/^label_values(\(snp_attestd_[a-z_]*\).*, *vm)$/\1/p')
if [ -n "$vm_metric" ] && grep -q "^| \`$vm_metric\` | [a-z]* | \`vm\`" "$doc"; then
	ok "variable vm = label_values($vm_metric, vm), a per-VM metric in docs/metrics.md"
else
	not_ok "variable vm comes from a documented per-VM metric with the vm label ('$vm_metric')"
fi

# Every query panel has queries; per-VM panels filter on $vm.
if jq -e 'all(.panels[] | select(.type != "row" and .type != "text");
		(.targets | length > 0) and all(.targets[]; .expr | length > 0))' "$dash" >/dev/null &&
	jq -e '[.panels[] | select(.type == "row") | .title] | index("Per-VM drill-down ($vm)")' \
		"$dash" >/dev/null &&
	jq -e '(.panels | to_entries) as $e |
		($e | map(select(.value.type == "row" and (.value.title | startswith("Per-VM")))) |
			.[0].key) as $s |
		($e | map(select(.value.type == "row" and .key > $s)) | .[0].key) as $t |
		all($e[] | select(.key > $s and .key < $t) | .value; any(.targets[]; .expr |
			contains("vm=~\"$vm\"")))' "$dash" >/dev/null; then
	ok "every panel has non-empty queries; every per-VM panel filters on \$vm"
else
	not_ok "every panel has non-empty queries; every per-VM panel filters on \$vm"
fi

undocumented_names "$dash" >"$tmp/undoc"
used=$(jq -r '.. | strings' "$dash" | grep -o 'snp_attestd_[a-zA-Z0-9_:]*' | sed 's/:*$//' |
	sort -u | wc -l)
if [ ! -s "$tmp/undoc" ] && [ "$used" -ge 30 ]; then
	ok "all $used metric names used by the dashboard are in docs/metrics.md"
else
	not_ok "metric names used by the dashboard are in docs/metrics.md ($used used)"
	diag "$tmp/undoc"
fi

bad_label_values "$dash" >"$tmp/badlabels"
if [ ! -s "$tmp/badlabels" ]; then
	ok "every literal label value in a query is in docs/metrics.md"
else
	not_ok "every literal label value in a query is in docs/metrics.md"
	diag "$tmp/badlabels"
fi

# Valid PromQL: the queries, with Grafana's variables given values, as recording rules for
# promtool (which parses every expression).
if command -v promtool >/dev/null; then
	exprs "$dash" | grep -v '^label_values(' |
		sed -e 's/\$__rate_interval/1m/g; s/\$__range/1h/g; s/\$vm/.+/g; s/\$instance/.+/g' |
		jq -R -s '{groups: [{name: "dashboard", rules: [split("\n")[] |
			select(length > 0) | {record: "dashboard:expr", expr: .}]}]}' >"$tmp/rules.json"
	nexpr=$(jq '.groups[0].rules | length' "$tmp/rules.json")
	if [ "$nexpr" -ge 30 ] && promtool check rules "$tmp/rules.json" >"$tmp/promtool.out" 2>&1; then
		ok "all $nexpr panel queries are valid PromQL (promtool check rules)"
	else
		not_ok "panel queries are valid PromQL ($nexpr queries)"
		diag "$tmp/promtool.out"
	fi
else
	ok "# SKIP promtool not installed (scripts/setup)"
fi

# The checks above must catch drift: a renamed metric, a misspelt label value, a broken file.
jq '.panels |= map(if .targets then .targets[0].expr |= sub("snp_attestd_vms";
	"snp_attestd_vm_count") else . end)' "$dash" >"$tmp/renamed.json"
jq '.panels[1].targets[0].expr =
	"sum(rate(snp_attestd_busy_answers_total{reason=\"qouta\"}[1m]))"' "$dash" >"$tmp/misspelt.json"
head -c 2000 "$dash" >"$tmp/truncated.json"
if [ -n "$(undocumented_names "$tmp/renamed.json")" ] &&
	[ "$(bad_label_values "$tmp/misspelt.json")" = qouta ] &&
	! jq -e . "$tmp/truncated.json" >/dev/null 2>&1; then
	ok "refused: an undocumented metric name, a misspelt label value, truncated JSON"
else
	not_ok "refused: an undocumented metric name, a misspelt label value, truncated JSON"
fi

if [ -f "$png" ] && png_ok "$png"; then
	ok "$(basename "$png") is a PNG of a readable size"
else
	not_ok "$(basename "$png") exists and is a PNG of a readable size"
fi
size=$(wc -c <"$png" 2>/dev/null || echo 0)
if [ "$size" -ge 20000 ]; then
	ok "$(basename "$png") has content ($size bytes)"
else
	not_ok "$(basename "$png") has content ($size bytes; an empty plot is a few kB)"
fi

printf 'not a png at all, but long enough to have 24 bytes\n' >"$tmp/fake.png"
{ printf '\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR\x00\x00\x00\x10\x00\x00\x00\x10'; } \
	>"$tmp/tiny.png"
if ! png_ok "$tmp/fake.png" && ! png_ok "$tmp/tiny.png" && ! png_ok "$tmp/missing.png"; then
	ok "refused: a text file named .png, a 16x16 PNG header, a missing file"
else
	not_ok "refused: a text file named .png, a 16x16 PNG header, a missing file"
fi

exit $((fails > 0))
