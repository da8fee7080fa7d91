/* Deleting an image with everything derived from it, and the physician's preview of what the
 * network will be taught ("Check annotation"). Works beside app.js: the open image is the one
 * named in the page address (#image=<id>), which app.js keeps up to date. */
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const DELETED_KEY = "yoho-deleted";

  function currentImage() {
    const match = /#image=([0-9a-f]{24})$/.exec(window.location.hash);
    return match ? match[1] : null;
  }

  // The status line, server calls and download links of app.js (loaded before this file).
  const status = (text, kind) => window.yohoPage.status(text, kind);
  const request = (method, url) => window.yohoPage.api(method, url);

  function refresh() {
    const id = currentImage();
    $("delete-image").disabled = !id;
    $("check-annotation").disabled = !id;
  }

  // ---- delete --------------------------------------------------------------------------------

  async function deleteImage() {
    const id = currentImage();
    if (!id) return;
    const name = ($("image-name").textContent || "this image").split(" — ")[0];
    const question =
      `Delete “${name}” from this computer?\n\n` +
      "The image, its annotation and every result made from it (masks, overlays, exports, " +
      "networks) are removed from the results folder. Running jobs of this image are stopped. " +
      "This cannot be undone.";
    if (!window.confirm(question)) {
      status("Nothing was deleted.", "info");
      return;
    }
    status(`Deleting ${name}…`, "busy");
    try {
      const done = await request("DELETE", `/api/images/${id}`);
      sessionStorage.setItem(DELETED_KEY, `Deleted ${done.name || name} and everything derived from it (${done.files} files).`);
    } catch (err) {
      status(`Not deleted: ${err.message}`, "error");
      return;
    }
    // A fresh page: no state of the deleted image stays in memory or in the address.
    window.location.replace(window.location.pathname);
  }

  // ---- check annotation ------------------------------------------------------------------------

  function waitFor(test, seconds) {
    return new Promise((resolve) => {
      const start = Date.now();
      const tick = () => {
        if (test()) resolve(true);
        else if (Date.now() - start > seconds * 1000) resolve(false);
        else setTimeout(tick, 50);
      };
      tick();
    });
  }

  async function checkAnnotation() {
    const id = currentImage();
    if (!id) return;
    const state = $("save-state").textContent;
    if (state.startsWith("Unsaved") || state.startsWith("Not saved")) {
      $("save").click(); // app.js saves (and reports a refusal in the status line)
      const saved = await waitFor(() => $("save-state").textContent.startsWith("Saved"), 10);
      if (!saved) return;
    }
    status("Preparing the preview of what the network will be taught…", "busy");
    let checks;
    try {
      checks = (await request("GET", `/api/images/${id}/preview`)).checks;
    } catch (err) {
      status(`No preview: ${err.message}`, "error");
      return;
    }
    const img = $("preview-image");
    const loaded = new Promise((resolve, reject) => {
      img.onload = resolve;
      img.onerror = () => reject(new Error("the preview picture could not be loaded"));
    });
    img.src = `/api/images/${id}/preview.png?t=${Date.now()}`;
    try {
      await loaded;
    } catch (err) {
      status(`No preview: ${err.message}`, "error");
      return;
    }
    $("preview-checks").replaceChildren(
      ...checks.map((text) => {
        const li = document.createElement("li");
        li.textContent = text;
        if (text.startsWith("Check:")) li.className = "check-warning";
        return li;
      }),
    );
    $("preview-dialog").showModal();
    const warnings = checks.filter((t) => t.startsWith("Check:")).length;
    status(warnings ? `Preview: ${warnings} point(s) to check in the annotation.` : "Preview: no problem found in the annotation.", warnings ? "info" : "ok");
  }

  // ---- the outline's exports of the result shown ---------------------------------------------

  const EXPORTS = {
    "download-geojson": "lesion.geojson",
    "download-labelme": "lesion_labelme.json",
    "download-polygons": "lesion_annotation.json",
  };

  function refreshExports() {
    const id = currentImage();
    const job = $("editor").dataset.result; // app.js names the job whose result is shown
    for (const [link, file] of Object.entries(EXPORTS)) {
      const url = id && job ? `/api/images/${id}/jobs/${job}/files/${file}?download=true` : null;
      window.yohoPage.setLink(link, url);
    }
  }

  // ---- wiring ----------------------------------------------------------------------------------

  function start() {
    $("delete-image").addEventListener("click", deleteImage);
    $("check-annotation").addEventListener("click", checkAnnotation);
    $("preview-close").addEventListener("click", () => $("preview-dialog").close());
    // app.js writes the image name whenever an image is opened: follow it.
    new MutationObserver(refresh).observe($("image-name"), { childList: true, characterData: true, subtree: true });
    window.addEventListener("hashchange", refresh);
    new MutationObserver(refreshExports).observe($("editor"), { attributes: true, attributeFilter: ["data-result"] });
    refreshExports();
    refresh();
    const deleted = sessionStorage.getItem(DELETED_KEY);
    if (deleted) {
      sessionStorage.removeItem(DELETED_KEY);
      // After app.js has written its own first message.
      waitFor(() => document.body.dataset.ready === "true", 10).then(() => status(deleted, "ok"));
    }
  }

  start();
})();
