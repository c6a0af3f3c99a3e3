// medallion dashboard: the live time-series chart of /tables/{table}.
//
// The server renders the first chart (chart.go); this script polls
// /api/tables/{table}/series once a second with If-None-Match, gets 304
// while the table version is unchanged, and redraws the SVG from the JSON
// on 200. layout() mirrors layoutChart in chart.go: keep the two in step.
(function () {
  'use strict';
  var svg = document.getElementById('chart');
  if (!svg) return;
  document.documentElement.classList.add('js');

  var W = 1160, H = 400, L = 64, R = 20, T = 44, B = 30, MAXG = 8;
  var STEPS = [60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800, 2592000];
  var MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

  var table = svg.dataset.table, measure = svg.dataset.measure, etag = svg.dataset.etag || '';
  var select = document.getElementById('measure');
  var status = document.getElementById('chart-status');
  var versionCell = document.getElementById('table-version');
  var timer = null, busy = false, again = false;

  function esc(s) {
    return String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
      .replace(/"/g, '&#34;').replace(/'/g, '&#39;');
  }
  function f1(x) { return String(Math.round(x * 10) / 10); }
  function pad(n) { return n < 10 ? '0' + n : String(n); }
  function niceStep(x) {
    if (!(x > 0) || !isFinite(x)) return 1;
    var e = Math.floor(Math.log10(x)), f = x / Math.pow(10, e);
    var n = f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10;
    return n * Math.pow(10, e);
  }
  function valueTicks(lo, hi) {
    if (hi === lo) { var d = Math.abs(lo) * 0.1 || 1; lo -= d; hi += d; }
    var step = niceStep((hi - lo) / 5);
    var lo2 = Math.floor(lo / step) * step, hi2 = Math.ceil(hi / step) * step, ticks = [];
    for (var i = 0; ; i++) {
      var v = lo2 + i * step;
      if (v > hi2 + step / 2) break;
      ticks.push(v);
    }
    return { ticks: ticks, step: step, lo: lo2, hi: hi2 };
  }
  function tickLabel(v, step) {
    var dec = Math.max(0, -Math.floor(Math.log10(step)));
    if (Math.abs(v) < step / 1e6) v = 0;
    return v.toFixed(dec);
  }
  function timeTicks(t0, t1) {
    var step = STEPS[STEPS.length - 1];
    for (var i = 0; i < STEPS.length; i++) {
      if (Math.floor((t1 - t0) / STEPS[i]) <= 8) { step = STEPS[i]; break; }
    }
    var first = Math.ceil(t0 / step) * step, ticks = [];
    for (var t = first; t <= t1; t += step) ticks.push(t);
    return { ticks: ticks, step: step };
  }
  function timeLabel(t, step, span) {
    var d = new Date(t * 1000);
    var day = MONTHS[d.getUTCMonth()] + ' ' + d.getUTCDate();
    var hm = pad(d.getUTCHours()) + ':' + pad(d.getUTCMinutes());
    if (step >= 86400) return day;
    if (span > 86400) return day + ' ' + hm;
    return hm;
  }
  function fmtValue(v) {
    if (v !== 0 && (Math.abs(v) >= 1e12 || Math.abs(v) < 1e-4)) return v.toPrecision(6);
    return v.toFixed(4).replace(/0+$/, '').replace(/\.$/, '');
  }
  function fmtTime(t) {
    var d = new Date(t * 1000);
    return d.getUTCFullYear() + '-' + pad(d.getUTCMonth() + 1) + '-' + pad(d.getUTCDate()) + ' ' +
      pad(d.getUTCHours()) + ':' + pad(d.getUTCMinutes());
  }

  // layout returns the chart's inner SVG markup and its point counts.
  function layout(sd) {
    var out = [], n = 0, t0 = 0, t1 = 0, v0 = 0, v1 = 0;
    sd.groups.forEach(function (g) {
      g.points.forEach(function (p) {
        p.ts = Math.floor(Date.parse(p.t) / 1000);
        if (n === 0) { t0 = t1 = p.ts; v0 = v1 = p.v; }
        t0 = Math.min(t0, p.ts); t1 = Math.max(t1, p.ts);
        v0 = Math.min(v0, p.v); v1 = Math.max(v1, p.v);
        n++;
      });
    });
    if (n === 0) {
      return { inner: '<text class="empty" x="' + W / 2 + '" y="' + H / 2 + '" text-anchor="middle">no rows with ' +
        esc(sd.measure) + ' yet</text>', points: 0, flagged: 0 };
    }
    if (t1 === t0) { t0 -= 60; t1 += 60; }
    var yt = valueTicks(v0, v1), pw = W - L - R, ph = H - T - B;
    function x(t) { return L + (t - t0) / (t1 - t0) * pw; }
    function y(v) { return T + (1 - (v - yt.lo) / (yt.hi - yt.lo)) * ph; }

    out.push('<g class="grid">');
    yt.ticks.forEach(function (v) {
      out.push('<line x1="' + L + '" x2="' + (W - R) + '" y1="' + f1(y(v)) + '" y2="' + f1(y(v)) + '"></line>');
    });
    out.push('</g><g class="axis">');
    out.push('<line x1="' + L + '" x2="' + (W - R) + '" y1="' + (H - B) + '" y2="' + (H - B) + '"></line>');
    yt.ticks.forEach(function (v) {
      out.push('<text class="tick-label" x="' + (L - 8) + '" y="' + f1(y(v) + 4) + '" text-anchor="end">' + tickLabel(v, yt.step) + '</text>');
    });
    var xt = timeTicks(t0, t1);
    xt.ticks.forEach(function (t) {
      out.push('<line x1="' + f1(x(t)) + '" x2="' + f1(x(t)) + '" y1="' + (H - B) + '" y2="' + (H - B + 5) + '"></line>');
      out.push('<text class="tick-label" x="' + f1(x(t)) + '" y="' + (H - B + 19) + '" text-anchor="middle">' + timeLabel(t, xt.step, t1 - t0) + '</text>');
    });
    out.push('</g>');

    var flagged = [], points = 0, nflag = 0;
    sd.groups.forEach(function (g, i) {
      var G = esc(g.group), d = [];
      g.points.forEach(function (p, j) { d.push((j === 0 ? 'M' : 'L') + f1(x(p.ts)) + ' ' + f1(y(p.v))); });
      out.push('<g class="group c' + (i % MAXG) + '" data-group="' + G + '"><path class="series" data-group="' + G + '" d="' + d.join('') + '"></path>');
      g.points.forEach(function (p) {
        points++;
        if (p.flagged) {
          nflag++;
          var title = g.group + ' · ' + fmtTime(p.ts) + ' · ' + sd.measure + ' = ' + fmtValue(p.v) + ' · ' + (p.flags || []).join(', ');
          flagged.push('<circle class="point flagged" data-group="' + G + '" cx="' + f1(x(p.ts)) + '" cy="' + f1(y(p.v)) +
            '" r="4.5"><title>' + esc(title) + '</title></circle>');
          return;
        }
        out.push('<circle class="point" cx="' + f1(x(p.ts)) + '" cy="' + f1(y(p.v)) + '" r="2.2"></circle>');
      });
      out.push('</g>');
    });
    out.push('<g class="flags">' + flagged.join('') + '</g>');

    out.push('<g class="legend">');
    var lx = L;
    sd.groups.forEach(function (g, i) {
      out.push('<g class="legend-item c' + (i % MAXG) + '"><rect class="swatch" x="' + f1(lx) + '" y="12" width="14" height="4" rx="1"></rect><text x="' +
        f1(lx + 19) + '" y="18">' + esc(g.group) + '</text></g>');
      lx += 19 + 7 * Array.from(g.group).length + 22;
    });
    if (sd.flags && sd.flags.length) {
      out.push('<g class="legend-item"><circle class="legend-flag" cx="' + f1(lx + 6) + '" cy="14" r="4.5"></circle><text x="' +
        f1(lx + 16) + '" y="18">' + esc(sd.flags.join(', ')) + '</text></g>');
    }
    out.push('</g>');
    return { inner: out.join(''), points: points, flagged: nflag };
  }

  function render(sd) {
    var c = layout(sd);
    svg.innerHTML = c.inner;
    svg.dataset.points = String(c.points);
    svg.dataset.flagged = String(c.flagged);
    svg.dataset.version = String(sd.version);
    svg.dataset.measure = sd.measure;
    svg.dataset.etag = etag;
    svg.setAttribute('aria-label', sd.measure + ' over window_start');
    if (versionCell) versionCell.textContent = String(sd.version);
  }

  function setStatus(ok) {
    if (!status) return;
    var now = new Date();
    status.className = 'chart-status ' + (ok ? 'live' : 'off');
    status.textContent = (ok ? 'live' : 'offline') + ' · version ' + svg.dataset.version + ' · ' +
      svg.dataset.points + ' points · checked ' + pad(now.getHours()) + ':' + pad(now.getMinutes()) + ':' + pad(now.getSeconds());
  }

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(poll, 1000);
  }

  function poll() {
    if (busy) { again = true; return; }
    if (document.hidden) { schedule(); return; }
    busy = true;
    var want = measure;
    var headers = {};
    if (etag) headers['If-None-Match'] = etag;
    var url = '/api/tables/' + encodeURIComponent(table) + '/series?measure=' + encodeURIComponent(want);
    fetch(url, { headers: headers, cache: 'no-store', credentials: 'same-origin' })
      .then(function (res) {
        if (res.status === 304) return true;
        if (!res.ok) return false;
        var tag = res.headers.get('ETag') || '';
        return res.json().then(function (sd) {
          if (want !== measure) return true; // the measure changed meanwhile
          etag = tag;
          render(sd);
          return true;
        });
      }, function () { return false; })
      .then(function (ok) {
        setStatus(ok);
        busy = false;
        if (again) { again = false; poll(); return; }
        schedule();
      });
  }

  if (select) {
    select.addEventListener('change', function () {
      measure = select.value;
      etag = '';
      var u = new URL(window.location.href);
      u.searchParams.set('measure', measure);
      window.history.replaceState(null, '', u.pathname + u.search);
      clearTimeout(timer);
      poll();
    });
  }
  setStatus(true);
  schedule();
})();
