// Refreshes the blanket upgrade's counts (every data-interval seconds) without reloading.
// Operators only; customer pages carry no script.
(function () {
  var section = document.getElementById("progress");
  if (!section || !window.fetch) return;
  function update(data) {
    section.querySelectorAll("[data-count]").forEach(function (el) {
      var value = data[el.getAttribute("data-count")];
      if (value !== undefined) el.textContent = value;
    });
    var bar = section.querySelector(".bar");
    bar.setAttribute("aria-valuenow", data.percent_caught_up);
    bar.firstElementChild.style.width = data.percent_caught_up + "%";
    var total = data.total || 1;
    var confirmed = 300 * data.confirmed / total, pending = 300 * data.pending / total;
    var chart = section.querySelector("[data-chart]");
    chart.querySelector('[data-part="confirmed"]').setAttribute("width", confirmed);
    var p = chart.querySelector('[data-part="pending"]');
    p.setAttribute("x", confirmed);
    p.setAttribute("width", pending);
  }
  function poll() {
    fetch(section.getAttribute("data-url"), { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) { if (data) update(data); })
      .catch(function () {});
  }
  setInterval(poll, 1000 * (parseInt(section.getAttribute("data-interval"), 10) || 10));
})();
