// Damage photos over the satellite line (issue 13): each chosen photo is shrunk in the
// browser (longest side 1,600 px, JPEG, aiming at 200-300 KB) and sent on its own, with a
// status line per photo. The report's text is saved first (the form without its photos),
// then each photo goes to the report's "add a photo" form: a photo that fails never
// loses the report or the other photos. Without this script the plain forms work.
// createImageBitmap reads the file without a blob: URL, which the CSP does not allow.
(function () {
  "use strict";
  var LONGEST = 1600;
  var TARGET = 300 * 1024;
  var QUALITIES = [0.8, 0.7, 0.6, 0.5];
  if (!window.FormData || !window.createImageBitmap || !window.Promise) return;

  function encode(bitmap, longest, quality) {
    var scale = Math.min(1, longest / Math.max(bitmap.width, bitmap.height));
    var canvas = document.createElement("canvas");
    canvas.width = Math.round(bitmap.width * scale);
    canvas.height = Math.round(bitmap.height * scale);
    var context = canvas.getContext("2d");
    context.fillStyle = "#fff"; // a PNG's transparency becomes white, not black
    context.fillRect(0, 0, canvas.width, canvas.height);
    context.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
    return new Promise(function (resolve, reject) {
      canvas.toBlob(function (blob) {
        if (blob) resolve(blob); else reject(new Error("toBlob"));
      }, "image/jpeg", quality);
    });
  }

  async function shrink(file) {
    var bitmap;
    try {
      bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
    } catch (error) {
      return file; // not an image the browser reads: the server says what is wrong
    }
    var small = bitmap.width <= LONGEST && bitmap.height <= LONGEST;
    if (small && file.size <= TARGET) return file;
    var longest = LONGEST, blob = null;
    // Lower the quality first, then the size, until the photo is within the target.
    for (var round = 0; round < 3; round++) {
      for (var i = 0; i < QUALITIES.length; i++) {
        blob = await encode(bitmap, longest, QUALITIES[i]);
        if (blob.size <= TARGET) break;
      }
      if (blob.size <= TARGET) break;
      longest = Math.round(longest * 0.75);
    }
    if (small && blob.size >= file.size) return file;
    var name = file.name.replace(/\.[^.]*$/, "") + ".jpg";
    return new File([blob], name, { type: "image/jpeg" });
  }

  // POST with the upload's progress; resolves with the XMLHttpRequest whatever happens.
  function send(url, data, responseType, onProgress) {
    return new Promise(function (resolve) {
      var xhr = new XMLHttpRequest();
      xhr.open("POST", url);
      xhr.responseType = responseType;
      if (responseType === "json") xhr.setRequestHeader("Accept", "application/json");
      if (onProgress) {
        xhr.upload.onprogress = function (event) {
          if (event.lengthComputable) onProgress(Math.floor((100 * event.loaded) / event.total));
        };
      }
      xhr.onload = xhr.onerror = xhr.ontimeout = xhr.onabort = function () { resolve(xhr); };
      xhr.send(data);
    });
  }

  function kb(bytes) { return Math.max(1, Math.round(bytes / 1024)) + " KB"; }

  function enhance(form) {
    var input = form.querySelector('input[type="file"]');
    var list = form.querySelector("[data-photo-status]");
    var button = form.querySelector('button[type="submit"]');
    if (!input || !list) return;
    var text = list.dataset;
    var addsToReport = form.hasAttribute("data-add-photo");

    form.addEventListener("submit", async function (event) {
      var files = Array.prototype.slice.call(input.files);
      if (!files.length) return; // nothing to shrink: the plain form
      event.preventDefault();
      if (button) button.disabled = true;
      list.hidden = false;
      list.textContent = "";
      var lines = files.map(function (file) {
        var line = document.createElement("li");
        line.textContent = file.name + ": " + text.waiting;
        list.appendChild(line);
        return line;
      });
      var reportUrl = location.href, addUrl = form.action, token;
      if (!addsToReport) {
        var status = document.createElement("li");
        status.textContent = text.saving;
        list.insertBefore(status, list.firstChild);
        var report = new FormData(form);
        report.delete(input.name);
        var saved = await send(form.action, report, "document");
        var addForm = saved.status === 200 && saved.response &&
          saved.response.querySelector("form[data-add-photo]");
        if (!addForm) {
          if (saved.response && saved.response.documentElement) {
            // the form again with its errors (its photos were not sent yet)
            document.replaceChild(
              document.importNode(saved.response.documentElement, true),
              document.documentElement
            );
            document.querySelectorAll("form[data-photo-shrink]").forEach(enhance);
          } else {
            status.textContent = text.failed;
            if (button) button.disabled = false;
          }
          return;
        }
        status.textContent = text.saved;
        reportUrl = saved.responseURL;
        addUrl = new URL(addForm.getAttribute("action"), reportUrl).href;
        token = addForm.querySelector('[name="csrfmiddlewaretoken"]').value;
      } else {
        token = form.querySelector('[name="csrfmiddlewaretoken"]').value;
      }
      var allSent = true;
      for (var i = 0; i < files.length; i++) {
        var line = lines[i], label = files[i].name + ": ";
        line.textContent = label + text.shrinking;
        var photo = await shrink(files[i]);
        var data = new FormData();
        data.append("csrfmiddlewaretoken", token);
        data.append("photo", photo, photo.name);
        var size = kb(photo.size);
        var sent = await send(addUrl, data, "json", function (percent) {
          line.textContent = label + text.sending + " " + size + " " + percent + "%";
        });
        if (sent.status === 201) {
          line.textContent = label + text.sent + " (" + size + ")";
        } else {
          allSent = false;
          line.textContent = label + ((sent.response && sent.response.error) || text.failed);
        }
      }
      if (allSent) {
        location.assign(reportUrl);
        return;
      }
      var more = document.createElement("li");
      var link = document.createElement("a");
      link.href = reportUrl;
      link.textContent = text.open;
      more.appendChild(link);
      list.appendChild(more);
      // The report is saved: sending its form again would make a second report.
      if (button && addsToReport) button.disabled = false;
    });
  }

  document.querySelectorAll("form[data-photo-shrink]").forEach(enhance);
})();
