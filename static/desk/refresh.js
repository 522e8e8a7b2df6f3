// The support queue refreshes its list every data-refresh seconds: it fetches the page
// it is on (same filters, same page) and swaps in the new list. It waits while the agent
// is typing or choosing a filter, has text selected, or the tab is hidden, so nothing
// moves under the hand. Without this script a reload does the same.
(function () {
  var region = document.getElementById("queue");
  if (!region || !window.fetch || !window.DOMParser) return;
  var seconds = parseInt(region.getAttribute("data-refresh"), 10) || 30;
  var lastInput = 0;
  var note = region.querySelector(".refresh-note");
  if (note) note.hidden = false;
  ["input", "keydown", "change", "focusin"].forEach(function (type) {
    document.addEventListener(type, function () { lastInput = Date.now(); }, true);
  });
  function busy() {
    var active = document.activeElement;
    var typing = active && /^(INPUT|SELECT|TEXTAREA)$/.test(active.tagName);
    var selected = window.getSelection && String(window.getSelection()) !== "";
    var recent = Date.now() - lastInput < 5000;
    return document.hidden || typing || selected || recent;
  }
  function refresh() {
    if (busy()) return;
    fetch(window.location.href, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (!html || busy()) return;
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("queue");
        if (!fresh) return;
        region.innerHTML = fresh.innerHTML;
        note = region.querySelector(".refresh-note");
        if (note) note.hidden = false;
      })
      .catch(function () {});
  }
  setInterval(refresh, seconds * 1000);
})();
