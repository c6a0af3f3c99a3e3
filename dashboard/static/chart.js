// medallion dashboard: the time-series charts of /tables/{table}.
//
// The server renders the first chart (chart.go); this script asks
// /api/tables/{table}/series for one bucket per pixel of the plot (the
// server sends each bucket's min and max, so spikes survive) and redraws
// when live.js reports a commit of this table (server-sent events, or its
// polling fallback), sending If-None-Match so an unchanged answer is a 304.
// It adds what a static picture cannot: hover values, drag-to-zoom, a time
// range, a group picker and small multiples of more measures. layout()
// mirrors layoutChart in chart.go: keep the two in step.
(function () {
  'use strict';
  var svg = document.getElementById('chart');
  if (!svg) return;
  document.documentElement.classList.add('js');

  var W = 1160, H = 400, L = 64, R = 20, T = 44, B = 46, MAXG = 8, SMALL_H = 220;
  var STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800, 2592000];
  var MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  var UNITS = [[1e12, 'T'], [1e9, 'G'], [1e6, 'M'], [1e3, 'k']];

  var $ = function (id) { return document.getElementById(id); };
  var table = svg.dataset.table;
  var params = new URL(window.location.href).searchParams;
  var st = {
    measure: svg.dataset.measure, time: svg.dataset.time || '', range: params.get('range') || 'all',
    from: params.get('from'), to: params.get('to'), groups: (params.get('groups') || '').split(',').filter(Boolean),
    top: params.get('top') || '8', rank: params.get('rank') || 'recent',
    extra: (params.get('also') || '').split(',').filter(Boolean)
  };
  var etag = '', busy = false, again = false, drawn = null, groupNames = '';
  var status = $('chart-status'), multiples = $('multiples');

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
  // tickLabel: 50M, 1.2k, 0.25 (tickLabel in chart.go).
  function tickLabel(v, step) {
    if (Math.abs(v) < step / 1e6) return '0';
    var scale = 1, suffix = '', a = Math.max(Math.abs(v), step);
    for (var i = 0; i < UNITS.length; i++) {
      if (a >= UNITS[i][0]) { scale = UNITS[i][0]; suffix = UNITS[i][1]; break; }
    }
    var dec = Math.max(0, -Math.floor(Math.log10(step / scale) + 1e-9));
    return (v / scale).toFixed(dec) + suffix;
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
    if (step < 60) return hm + ':' + pad(d.getUTCSeconds());
    return hm;
  }
  // unitSuffix is " kWh" when the measure declares a unit, else "".
  function unitSuffix(sd) { return sd.unit ? ' ' + sd.unit : ''; }

  function fmtValue(v) {
    if (v !== 0 && (Math.abs(v) >= 1e12 || Math.abs(v) < 1e-4)) return v.toPrecision(6);
    var s = v.toFixed(4).replace(/0+$/, '').replace(/\.$/, '');
    if (Math.abs(v) >= 1e4) s += ' (' + tickLabel(v, Math.pow(10, Math.floor(Math.log10(Math.abs(v))) - 1)) + ')';
    return s;
  }
  function fmtTime(t) {
    var d = new Date(t * 1000);
    var s = d.getUTCFullYear() + '-' + pad(d.getUTCMonth() + 1) + '-' + pad(d.getUTCDate()) + ' ' +
      pad(d.getUTCHours()) + ':' + pad(d.getUTCMinutes()) + ':' + pad(d.getUTCSeconds());
    var ms = d.getUTCMilliseconds();
    return ms ? s + '.' + String(ms + 1000).slice(1) : s;
  }

  // frame returns the axes of sd in a chart of height h: the time and value
  // ranges, the scales and the counts.
  function frame(sd, h) {
    var n = 0, t0 = 0, t1 = 0, v0 = 0, v1 = 0;
    sd.groups.forEach(function (g) {
      g.points.forEach(function (p) {
        p.ts = Date.parse(p.t) / 1000;
        if (n === 0) { t0 = t1 = p.ts; v0 = v1 = p.v; }
        t0 = Math.min(t0, p.ts); t1 = Math.max(t1, p.ts);
        v0 = Math.min(v0, p.v); v1 = Math.max(v1, p.v);
        n++;
      });
    });
    if (sd.from) { t0 = Math.floor(Date.parse(sd.from) / 1000); t1 = Math.floor(Date.parse(sd.to) / 1000); }
    if (t1 === t0) { t0 -= 60; t1 += 60; }
    var yt = valueTicks(v0, v1), pw = W - L - R, ph = h - T - B;
    return {
      n: n, t0: t0, t1: t1, yt: yt, h: h,
      x: function (t) { return L + (t - t0) / (t1 - t0) * pw; },
      y: function (v) { return T + (1 - (v - yt.lo) / (yt.hi - yt.lo)) * ph; },
      t: function (x) { return t0 + (x - L) / pw * (t1 - t0); }
    };
  }

  // colour: up to 8 groups drawn, each its own colour; more than that,
  // a group keeps its colour (its place among all the groups) as the
  // picker changes which are drawn.
  function colour(sd, g, k) {
    if (sd.groups.length <= MAXG) return k;
    var i = (sd.group_names || []).indexOf(g.group);
    return i >= 0 ? i : k;
  }

  // layout returns a chart's inner SVG markup and its point counts.
  function layout(sd, h) {
    var fr = frame(sd, h), out = [], x = fr.x, y = fr.y;
    if (fr.n === 0) {
      return { inner: '<text class="empty" x="' + W / 2 + '" y="' + h / 2 + '" text-anchor="middle">no rows with ' +
        esc(sd.measure) + ' in this range</text>', points: 0, flagged: 0, frame: fr };
    }
    out.push('<g class="grid">');
    fr.yt.ticks.forEach(function (v) {
      out.push('<line x1="' + L + '" x2="' + (W - R) + '" y1="' + f1(y(v)) + '" y2="' + f1(y(v)) + '"></line>');
    });
    out.push('</g><g class="axis">');
    out.push('<line x1="' + L + '" x2="' + (W - R) + '" y1="' + (h - B) + '" y2="' + (h - B) + '"></line>');
    fr.yt.ticks.forEach(function (v) {
      out.push('<text class="tick-label" x="' + (L - 8) + '" y="' + f1(y(v) + 4) + '" text-anchor="end">' + tickLabel(v, fr.yt.step) + '</text>');
    });
    var xt = timeTicks(fr.t0, fr.t1);
    xt.ticks.forEach(function (t) {
      out.push('<line x1="' + f1(x(t)) + '" x2="' + f1(x(t)) + '" y1="' + (h - B) + '" y2="' + (h - B + 5) + '"></line>');
      out.push('<text class="tick-label" x="' + f1(x(t)) + '" y="' + (h - B + 19) + '" text-anchor="middle">' + timeLabel(t, xt.step, fr.t1 - fr.t0) + '</text>');
    });
    var mid = T + (h - T - B) / 2;
    out.push('<text class="axis-title" x="' + (L + (W - L - R) / 2) + '" y="' + (h - 2) + '" text-anchor="middle">' + esc(sd.time_column) + ' (UTC)</text>');
    out.push('<text class="axis-title" x="14" y="' + mid + '" text-anchor="middle" transform="rotate(-90 14 ' + mid + ')">' + esc(sd.unit ? sd.measure + ' (' + sd.unit + ')' : sd.measure) + '</text>');
    out.push('</g>');

    var flagged = [], points = 0, nflag = 0;
    sd.groups.forEach(function (g, k) {
      var G = esc(g.group), d = [], i = colour(sd, g, k);
      g.points.forEach(function (p, j) { d.push((j === 0 || p.gap ? 'M' : 'L') + f1(x(p.ts)) + ' ' + f1(y(p.v))); });
      out.push('<g class="group c' + (i % MAXG) + '" data-group="' + G + '"><path class="series" data-group="' + G + '" d="' + d.join('') + '"></path>');
      var r = g.points.length > 300 ? 1.2 : 2.2;
      g.points.forEach(function (p) {
        points++;
        if (p.flagged) {
          nflag++;
          var title = g.group + ' · ' + fmtTime(p.ts) + ' · ' + sd.measure + ' = ' + fmtValue(p.v) + unitSuffix(sd) + ' · ' + (p.flags || []).join(', ');
          flagged.push('<circle class="point flagged" data-group="' + G + '" cx="' + f1(x(p.ts)) + '" cy="' + f1(y(p.v)) +
            '" r="4.5"><title>' + esc(title) + '</title></circle>');
          return;
        }
        out.push('<circle class="point" cx="' + f1(x(p.ts)) + '" cy="' + f1(y(p.v)) + '" r="' + r + '"></circle>');
      });
      out.push('</g>');
    });
    out.push('<g class="flags">' + flagged.join('') + '</g>');

    out.push('<g class="legend">');
    var lx = L;
    sd.groups.forEach(function (g, k) {
      var i = colour(sd, g, k);
      out.push('<g class="legend-item c' + (i % MAXG) + '"><rect class="swatch" x="' + f1(lx) + '" y="12" width="14" height="4" rx="1"></rect><text x="' +
        f1(lx + 19) + '" y="18">' + esc(g.group) + '</text></g>');
      lx += 19 + 7 * Array.from(g.group).length + 22;
    });
    if (sd.flags && sd.flags.length) {
      out.push('<g class="legend-item"><circle class="legend-flag" cx="' + f1(lx + 6) + '" cy="14" r="4.5"></circle><text x="' +
        f1(lx + 16) + '" y="18">' + esc(sd.flags.join(', ')) + '</text></g>');
    }
    out.push('</g><g class="hover"></g><rect class="zoom-band" x="0" y="' + T + '" width="0" height="' + (h - T - B) + '"></rect>');
    return { inner: out.join(''), points: points, flagged: nflag, frame: fr };
  }

  function draw(el, sd, h) {
    var c = layout(sd, h);
    el.innerHTML = c.inner;
    el.dataset.points = String(c.points);
    el.dataset.flagged = String(c.flagged);
    el.dataset.version = String(sd.version);
    el.dataset.measure = sd.measure;
    el.dataset.groups = String(sd.groups.length);
    el.dataset.rows = String(sd.rows);
    el.setAttribute('aria-label', sd.measure + ' over ' + sd.time_column);
    el.__sd = sd;
    el.__frame = c.frame;
  }

  // viewX converts a mouse position to the chart's x in SVG units.
  function viewX(el, ev) {
    var r = el.getBoundingClientRect();
    return (ev.clientX - r.left) / r.width * W;
  }

  // hover shows, at the time under the mouse, each group's nearest point.
  function hover(el, ev) {
    var sd = el.__sd, fr = el.__frame, g = el.querySelector('g.hover');
    if (!sd || !fr || !g || fr.n === 0) return;
    var vx = viewX(el, ev);
    if (vx < L || vx > W - R) { g.innerHTML = ''; el.dataset.hover = ''; return; }
    var t = fr.t(vx), lines = [], marks = [];
    sd.groups.forEach(function (grp, k) {
      var best = null, i = colour(sd, grp, k);
      grp.points.forEach(function (p) { if (!best || Math.abs(p.ts - t) < Math.abs(best.ts - t)) best = p; });
      if (!best) return;
      lines.push({ c: i % MAXG, s: grp.group + ': ' + fmtValue(best.v) + unitSuffix(sd) + (best.flagged ? ' ⚑ ' + (best.flags || []).join(', ') : '') + ' @ ' + fmtTime(best.ts) });
      marks.push('<circle class="hover-point c' + (i % MAXG) + '" cx="' + f1(fr.x(best.ts)) + '" cy="' + f1(fr.y(best.v)) + '" r="4"></circle>');
    });
    var bx = vx + 12 > W - 330 ? vx - 332 : vx + 12, out = [];
    out.push('<line class="hover-line" x1="' + f1(vx) + '" x2="' + f1(vx) + '" y1="' + T + '" y2="' + (fr.h - B) + '"></line>');
    out.push(marks.join(''));
    out.push('<rect class="hover-box" x="' + f1(bx) + '" y="' + (T + 4) + '" width="320" height="' + (18 + 16 * lines.length) + '" rx="4"></rect>');
    out.push('<text class="hover-text" x="' + f1(bx + 8) + '" y="' + (T + 18) + '">' + esc(fmtTime(t)) + ' UTC</text>');
    lines.forEach(function (l, i) {
      out.push('<text class="hover-text c' + l.c + '" x="' + f1(bx + 8) + '" y="' + (T + 34 + 16 * i) + '">' + esc(l.s) + '</text>');
    });
    g.innerHTML = out.join('');
    el.dataset.hover = lines.map(function (l) { return l.s; }).join('\n');
  }

  // zoomable lets a drag across a chart set ?from/?to.
  function zoomable(el) {
    var x0 = null;
    el.addEventListener('mousedown', function (ev) { x0 = viewX(el, ev); ev.preventDefault(); });
    el.addEventListener('mousemove', function (ev) {
      hover(el, ev);
      var band = el.querySelector('rect.zoom-band');
      if (x0 === null || !band) return;
      var x1 = viewX(el, ev);
      band.setAttribute('x', f1(Math.min(x0, x1)));
      band.setAttribute('width', f1(Math.abs(x1 - x0)));
    });
    el.addEventListener('mouseleave', function () {
      var g = el.querySelector('g.hover');
      if (g) g.innerHTML = '';
    });
    window.addEventListener('mouseup', function (ev) {
      if (x0 === null) return;
      var x1 = viewX(el, ev), a = x0, fr = el.__frame;
      x0 = null;
      var band = el.querySelector('rect.zoom-band');
      if (band) band.setAttribute('width', '0');
      if (!fr || Math.abs(x1 - a) < 6) return;
      var lo = Math.max(L, Math.min(a, x1)), hi = Math.min(W - R, Math.max(a, x1));
      zoomTo(new Date(fr.t(lo) * 1000).toISOString(), new Date(fr.t(hi) * 1000).toISOString());
    });
  }

  function zoomTo(from, to) {
    st.from = from; st.to = to;
    changed();
  }

  function seriesURL(measure) {
    var u = new URLSearchParams();
    u.set('measure', measure);
    if (st.time) u.set('time', st.time);
    if (st.range !== 'all') u.set('range', st.range);
    if (st.from) u.set('from', st.from);
    if (st.to) u.set('to', st.to);
    if (st.groups.length) u.set('groups', st.groups.join(','));
    else {
      if (st.top !== '8') u.set('top', st.top);
      if (st.rank !== 'recent') u.set('rank', st.rank);
    }
    // One bucket per two pixels: each sends its min and max, so there is
    // still a point per pixel, and the answer stays small.
    var px = Math.round(svg.getBoundingClientRect().width * (W - L - R) / W / 2);
    u.set('width', String(Math.max(50, Math.min(2000, px || 600))));
    return '/api/tables/' + encodeURIComponent(table) + '/series?' + u.toString();
  }

  // pageURL keeps the chart's state in the address bar (a reload or a
  // shared link shows the same chart).
  function pageURL() {
    var u = new URL(window.location.href), q = u.searchParams;
    q.set('measure', st.measure);
    [['time', st.time], ['range', st.range === 'all' ? '' : st.range], ['from', st.from], ['to', st.to],
      ['groups', st.groups.join(',')], ['top', st.top === '8' ? '' : st.top], ['rank', st.rank === 'recent' ? '' : st.rank],
      ['also', st.extra.join(',')]].forEach(function (kv) {
      if (kv[1]) q.set(kv[0], kv[1]); else q.delete(kv[0]);
    });
    window.history.replaceState(null, '', u.pathname + u.search);
  }

  function changed() {
    etag = '';
    pageURL();
    syncControls();
    refresh();
  }

  function get(url, tag) {
    var headers = {};
    if (tag) headers['If-None-Match'] = tag;
    return fetch(url, { headers: headers, cache: 'no-store', credentials: 'same-origin' }).then(function (res) {
      if (res.status === 304) return { same: true };
      if (!res.ok) return res.json().then(function (e) { throw new Error(e.error || res.statusText); });
      var t = res.headers.get('ETag') || '';
      return res.json().then(function (sd) { return { sd: sd, tag: t }; });
    });
  }

  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    var url = seriesURL(st.measure);
    get(url, etag).then(function (r) {
      if (r.same) return r;
      etag = r.tag;
      draw(svg, r.sd, H);
      drawn = r.sd;
      pickerList(r.sd);
      return r;
    }).then(function (r) {
      return refreshMultiples(r.same).then(function () { setStatus(true); });
    }).catch(function (e) {
      setStatus(false, e.message);
    }).then(function () {
      busy = false;
      if (again) { again = false; refresh(); }
    });
  }

  // refreshMultiples draws a small chart per extra measure, on the same
  // time range and groups as the main one.
  function refreshMultiples(same) {
    if (!multiples) return Promise.resolve();
    var want = st.extra.filter(function (m) { return m !== st.measure; });
    Array.prototype.slice.call(multiples.querySelectorAll('svg.chart')).forEach(function (el) {
      if (want.indexOf(el.dataset.measure) < 0) el.remove();
    });
    return Promise.all(want.map(function (m) {
      var el = multiples.querySelector('svg.chart[data-measure="' + CSS.escape(m) + '"]');
      if (!el) {
        el = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
        el.setAttribute('class', 'chart small');
        el.setAttribute('viewBox', '0 0 ' + W + ' ' + SMALL_H);
        el.dataset.measure = m;
        multiples.appendChild(el);
        zoomable(el);
      } else if (same) {
        return null;
      }
      return get(seriesURL(m), '').then(function (r) { if (r.sd) draw(el, r.sd, SMALL_H); });
    }));
  }

  function setStatus(ok, msg) {
    if (!status) return;
    var now = new Date(), mode = document.documentElement.dataset.live || 'push';
    status.className = 'chart-status ' + (ok ? 'live' : 'off');
    status.textContent = (ok ? (mode === 'poll' ? 'live (polling)' : 'live') : 'offline' + (msg ? ': ' + msg : '')) +
      ' · version ' + svg.dataset.version + ' · ' + Number(svg.dataset.points || 0).toLocaleString('en') + ' points of ' + (svg.dataset.rows ? Number(svg.dataset.rows).toLocaleString('en') : '?') +
      ' rows · ' + pad(now.getHours()) + ':' + pad(now.getMinutes()) + ':' + pad(now.getSeconds());
  }

  // The group picker: a checkbox per group (search filters them); none
  // checked means the top N by the rank.
  var picker = $('group-list'), search = $('group-search');
  function pickerList(sd) {
    if (!picker) return;
    var names = (sd.group_names || []).join('\n');
    var shown = sd.groups.map(function (g) { return g.group; });
    if (names !== groupNames) {
      groupNames = names;
      picker.innerHTML = (sd.group_names || []).map(function (g) {
        return '<label class="group-item"><input type="checkbox" class="group-pick" value="' + esc(g) + '"> ' + esc(g) + '</label>';
      }).join('');
      filterPicker();
    }
    Array.prototype.forEach.call(picker.querySelectorAll('input.group-pick'), function (cb) {
      cb.checked = shown.indexOf(cb.value) >= 0;
      cb.parentNode.classList.toggle('picked', st.groups.indexOf(cb.value) >= 0);
    });
    var count = $('group-count');
    if (count) count.textContent = shown.length + ' of ' + (sd.group_names || []).length + (st.groups.length ? ' picked' : ' (top ' + (st.top === 'all' ? 'all' : st.top) + ' by ' + st.rank + ')');
  }
  function filterPicker() {
    if (!picker || !search) return;
    var q = search.value.trim().toLowerCase();
    Array.prototype.forEach.call(picker.querySelectorAll('label.group-item'), function (l) {
      l.hidden = q !== '' && l.textContent.toLowerCase().indexOf(q) < 0;
    });
  }
  if (picker) {
    picker.addEventListener('change', function () {
      st.groups = Array.prototype.filter.call(picker.querySelectorAll('input.group-pick'), function (cb) { return cb.checked; })
        .map(function (cb) { return cb.value; });
      changed();
    });
  }
  if (search) search.addEventListener('input', filterPicker);

  function on(id, ev, fn) { var el = $(id); if (el) el.addEventListener(ev, fn); return el; }
  on('group-all', 'click', function () { st.groups = []; st.top = 'all'; changed(); });
  on('group-reset', 'click', function () { st.groups = []; st.top = '8'; st.rank = 'recent'; changed(); });
  on('group-top', 'change', function (e) { st.groups = []; st.top = e.target.value; changed(); });
  on('group-rank', 'change', function (e) { st.groups = []; st.rank = e.target.value; changed(); });
  on('measure', 'change', function (e) { st.measure = e.target.value; changed(); });
  on('time-col', 'change', function (e) { st.time = e.target.value; st.from = st.to = null; changed(); });
  on('zoom-reset', 'click', function () { st.from = st.to = null; changed(); });
  Array.prototype.forEach.call(document.querySelectorAll('button.range'), function (b) {
    b.addEventListener('click', function () { st.range = b.dataset.range; st.from = st.to = null; changed(); });
  });
  Array.prototype.forEach.call(document.querySelectorAll('input.also-measure'), function (cb) {
    cb.addEventListener('change', function () {
      st.extra = Array.prototype.filter.call(document.querySelectorAll('input.also-measure'), function (c) { return c.checked; })
        .map(function (c) { return c.value; });
      changed();
    });
  });

  function syncControls() {
    Array.prototype.forEach.call(document.querySelectorAll('button.range'), function (b) {
      b.classList.toggle('current', !st.from && b.dataset.range === st.range);
    });
    var z = $('zoom-reset');
    if (z) z.hidden = !st.from;
    var top = $('group-top'), rank = $('group-rank');
    if (top) top.value = st.top;
    if (rank) rank.value = st.rank;
    Array.prototype.forEach.call(document.querySelectorAll('input.also-measure'), function (c) {
      c.checked = st.extra.indexOf(c.value) >= 0;
    });
  }

  zoomable(svg);
  // live.js tells of commits (pushed, or polled when streams fail).
  document.addEventListener('medallion:commit', function (e) {
    if (!e.detail || e.detail.poll || e.detail.table === table) refresh();
  });
  syncControls();
  refresh();
})();
