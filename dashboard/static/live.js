// medallion dashboard: live pages without polling.
//
// Every page listens to /api/events (server-sent events; serve sends one
// "commit" event per table it commits). On a commit it fetches the page
// again and swaps its panels in place (section.panel, in order, except
// those marked data-keep, such as the chart, which redraws itself from the
// same event), so the header, sample, history, pipeline, quality and runs
// show the new version within a second. When the stream cannot be kept
// open (a proxy that buffers or cuts it) the page polls every few seconds
// instead; document.documentElement.dataset.live says which ("push" or
// "poll").
(function () {
  'use strict';
  var POLL_MS = 3000, FAIL_LIMIT = 3;
  var root = document.documentElement;
  // The sign-in and error pages have nothing live (and no session yet).
  if (document.querySelector('main .login, main .error-page')) return;
  var pending = null, busy = false, again = false, failures = 0, pollTimer = null, es = null;

  function announce(detail) {
    document.dispatchEvent(new CustomEvent('medallion:commit', { detail: detail }));
    schedule();
  }

  // schedule coalesces the commits of one micro-batch (bronze, silver,
  // gold within milliseconds) into one page refresh.
  function schedule() {
    clearTimeout(pending);
    pending = setTimeout(swap, 150);
  }

  function swap() {
    if (busy) { again = true; return; }
    var panels = document.querySelectorAll('main section.panel');
    if (!panels.length) return;
    busy = true;
    fetch(window.location.href, { cache: 'no-store', credentials: 'same-origin', headers: { Accept: 'text/html', 'X-Medallion-Live': 'panels' } })
      .then(function (res) { return res.ok ? res.text() : null; })
      .then(function (html) {
        if (html === null) return;
        var doc = new DOMParser().parseFromString(html, 'text/html');
        var fresh = doc.querySelectorAll('main section.panel');
        if (fresh.length !== panels.length) return; // the page changed shape: leave it
        Array.prototype.forEach.call(panels, function (p, i) {
          if (p.hasAttribute('data-keep') || p.contains(document.activeElement) && document.activeElement !== document.body) return;
          p.replaceWith(document.importNode(fresh[i], true));
        });
        var meta = document.querySelector('header.top .meta'), m2 = doc.querySelector('header.top .meta');
        if (meta && m2) meta.innerHTML = m2.innerHTML;
        root.dataset.refreshed = String((+root.dataset.refreshed || 0) + 1);
        document.dispatchEvent(new CustomEvent('medallion:swapped'));
      })
      .catch(function () {})
      .then(function () {
        busy = false;
        if (again) { again = false; swap(); }
      });
  }

  function poll() {
    root.dataset.live = 'poll';
    if (pollTimer) return;
    pollTimer = setInterval(function () {
      if (!document.hidden) announce({ poll: true });
    }, POLL_MS);
  }

  if (!window.EventSource) { poll(); return; }
  es = new EventSource('/api/events');
  root.dataset.live = 'connecting';
  es.addEventListener('open', function () {
    failures = 0;
    root.dataset.live = 'push';
    if (pollTimer) { clearInterval(pollTimer); pollTimer = null; }
  });
  es.addEventListener('commit', function (e) {
    var ev = {};
    try { ev = JSON.parse(e.data); } catch (err) { return; }
    root.dataset.lastCommit = ev.table + '@' + ev.version;
    announce(ev);
  });
  es.addEventListener('error', function () {
    // EventSource reconnects by itself; after a few failures in a row (or
    // when it gives up) poll until the stream opens again.
    failures++;
    if (failures >= FAIL_LIMIT || es.readyState === EventSource.CLOSED) poll();
  });
})();
