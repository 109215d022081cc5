"""The fixed parts of the HTML report: its style sheet and its filter script.

Both are inlined into the page (a CI artifact is often opened offline, and a CDN is one more
thing to trust). The script only hides and shows elements by their ``data-service``,
``data-env`` and ``data-risk`` attributes (graph nodes fade instead, as the edges need them);
with scripts off the filter form stays hidden and everything is shown. No user text is ever
placed in here.
"""

from __future__ import annotations

__all__ = ["STYLE", "SCRIPT"]

STYLE = """
:root { --low:#2e7d32; --medium:#b26a00; --high:#c62828; --unknown:#6a1b9a; --line:#d0d4da; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0;
       color: #1d2330; background: #f6f7f9; }
header { background: #1d2330; color: #fff; padding: 14px 24px; }
header h1 { margin: 0; font-size: 20px; }
header p { margin: 4px 0 0; color: #c5cad3; }
main { padding: 16px 24px 48px; max-width: 1600px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 6px;
          padding: 12px 16px; margin: 0 0 16px; }
h2 { font-size: 18px; margin: 4px 0 10px; }
h3 { font-size: 15px; margin: 14px 0 6px; }
h4 { font-size: 14px; margin: 10px 0 4px; }
table { border-collapse: collapse; width: 100%; margin: 4px 0 8px; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #eceef1;
         vertical-align: top; }
th { background: #f0f2f5; font-weight: 600; }
code, pre { font: 12.5px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
pre { background: #f4f5f7; padding: 8px; overflow-x: auto; white-space: pre-wrap; }
.badge { display: inline-block; padding: 0 7px; border-radius: 9px; font-size: 12px;
         color: #fff; background: #7a8290; white-space: nowrap; }
.risk-low { background: var(--low); } .risk-medium { background: var(--medium); }
.risk-high { background: var(--high); } .risk-unknown { background: var(--unknown); }
.sev-error { background: var(--high); } .sev-warning { background: var(--medium); }
.out-passed { background: var(--low); } .out-failed { background: var(--high); }
.out-skipped { background: #7a8290; }
.st-completed { background: var(--low); } .st-pending { background: #5c6bc0; }
.st-failed, .st-interrupted { background: var(--high); }
.muted { color: #6b7380; }
.problem { color: var(--high); font-weight: 600; }
.summary { display: flex; gap: 18px; flex-wrap: wrap; margin: 0; padding: 0;
           list-style: none; }
.summary li { background: #f0f2f5; border-radius: 4px; padding: 4px 10px; }
#filters { display: flex; gap: 14px; align-items: center; flex-wrap: wrap; }
#filters label { font-weight: 600; }
#filters select { margin-left: 4px; }
.filtered-out { display: none !important; }
svg .node.dimmed { opacity: 0.25; }
article.migration { border-top: 1px solid var(--line); padding: 6px 0 4px; }
article.migration:target { background: #fff8d6; }
.graph { overflow-x: auto; border: 1px solid #eceef1; background: #fbfcfd; }
svg .node rect { fill: #fff; stroke: #7a8290; stroke-width: 1.2; rx: 5; }
svg .node.risk-high rect { stroke: var(--high); stroke-width: 2.2; }
svg .node.risk-medium rect { stroke: var(--medium); stroke-width: 1.8; }
svg .node.unknown rect { stroke: var(--unknown); stroke-dasharray: 4 2; }
svg .node.env-only rect { stroke-dasharray: 6 3; }
svg .node.other rect { fill: #f0f2f5; }
svg .node text { font: 11.5px system-ui, sans-serif; fill: #1d2330; }
svg .node text.service { fill: #6b7380; font-size: 10.5px; }
svg .node:hover rect { fill: #eef3ff; }
svg .edge { fill: none; stroke: #9aa1ad; stroke-width: 1.3; }
svg .edge.cross { stroke: #1565c0; stroke-width: 1.8; stroke-dasharray: 7 4; }
.legend span { margin-right: 14px; }
"""

SCRIPT = """
(function () {
  var form = document.getElementById('filters');
  if (!form) { return; }
  form.hidden = false;
  var fields = ['service', 'env', 'risk'];
  var params = new URLSearchParams(window.location.search);
  fields.forEach(function (name) {
    var select = form.elements[name];
    if (params.has(name)) { select.value = params.get(name); }
    select.addEventListener('change', apply);
  });
  function matches(el, name, wanted) {
    var attr = el.getAttribute('data-' + name);
    if (wanted === '' || attr === null) { return true; }
    return attr.split(' ').indexOf(wanted) >= 0;
  }
  function apply() {
    var wanted = {};
    fields.forEach(function (name) { wanted[name] = form.elements[name].value; });
    var shown = 0;
    document.querySelectorAll('[data-filter]').forEach(function (el) {
      var keep = fields.every(function (name) { return matches(el, name, wanted[name]); });
      el.classList.toggle('filtered-out', !keep);
      if (keep && el.matches('tr.migration-row')) { shown += 1; }
    });
    // Graph nodes stay in place (the edges need them) and fade instead.
    document.querySelectorAll('[data-dim]').forEach(function (el) {
      var keep = fields.every(function (name) { return matches(el, name, wanted[name]); });
      el.classList.toggle('dimmed', !keep);
    });
    // A table, or a whole service, with nothing left to show goes too.
    document.querySelectorAll('.environment, section.service').forEach(function (box) {
      if (box.classList.contains('filtered-out')) { return; }
      var rows = box.querySelectorAll('tr.migration-row');
      var left = box.querySelectorAll('tr.migration-row:not(.filtered-out)');
      if (rows.length > 0 && left.length === 0) { box.classList.add('filtered-out'); }
    });
    var count = document.getElementById('shown-count');
    if (count) { count.textContent = shown + ' row(s) shown'; }
  }
  apply();
})();
"""
