/* ecgscan page: upload a page, show the traces found, plot the 12 leads. No libraries. */
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const LAYOUT = [["I", "aVR", "V1", "V4"], ["II", "aVL", "V2", "V5"], ["III", "aVF", "V3", "V6"]];
  const RHYTHM = "II";
  let current = null;

  function show(el, on) { el.hidden = !on; }

  function setStatus(text, percent) {
    show($("progress-box"), true);
    $("status").textContent = text;
    const bar = $("progress");
    if (percent === null) { bar.removeAttribute("value"); } else { bar.value = percent; }
  }

  function fail(message) {
    show($("progress-box"), false);
    const box = $("error");
    box.textContent = message;
    show(box, true);
    document.body.dataset.state = "error";
  }

  function upload(file) {
    show($("error"), false);
    show($("result"), false);
    document.body.dataset.state = "uploading";
    const form = new FormData();
    form.append("file", file, file.name);
    form.append("fs", $("fs").value);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "v1/digitize");
    xhr.responseType = "json";
    const tic = performance.now();
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable) {
        const p = Math.round((100 * e.loaded) / e.total);
        setStatus(`Uploading ${file.name}: ${p} %`, p);
      }
    };
    xhr.upload.onload = () => {
      document.body.dataset.state = "processing";
      setStatus("Reading the page: grid, rows, traces, labels…", null);
    };
    xhr.onerror = () => fail("The server could not be reached. Is it still running?");
    xhr.ontimeout = () => fail("The server took too long to answer.");
    xhr.onload = () => {
      const body = xhr.response;
      if (xhr.status !== 200) {
        const detail = body && body.detail ? body.detail : xhr.statusText;
        const text = Array.isArray(detail) ? detail.map((d) => d.msg).join("; ") : detail;
        fail(`Could not digitize ${file.name} (${xhr.status}): ${text}`);
        return;
      }
      const seconds = ((performance.now() - tic) / 1000).toFixed(1);
      setStatus(`Done in ${seconds} s.`, 100);
      render(body);
    };
    setStatus(`Uploading ${file.name}…`, 0);
    xhr.send(form);
  }

  function render(r) {
    current = r;
    show($("result"), true);
    // labels, most likely first; chosen ones marked
    const list = $("labels");
    list.textContent = "";
    const probs = Object.entries(r.probabilities || {}).sort((a, b) => b[1] - a[1]);
    if (!probs.length) {
      const li = document.createElement("li");
      li.textContent = (r.warnings || []).join(" ") || "No classifier on this server.";
      list.appendChild(li);
    }
    for (const [name, p] of probs) {
      const li = document.createElement("li");
      const chosen = (r.labels || []).includes(name);
      li.className = chosen ? "label chosen" : "label";
      li.dataset.label = name;
      const title = document.createElement("span");
      title.className = "name";
      title.textContent = name;
      const bar = document.createElement("span");
      bar.className = "bar";
      const fill = document.createElement("span");
      fill.style.width = `${(100 * p).toFixed(1)}%`;
      bar.appendChild(fill);
      const val = document.createElement("span");
      val.className = "p";
      val.textContent = `${(100 * p).toFixed(1)} %`;
      li.append(title, bar, val);
      list.appendChild(li);
    }
    $("classifier").textContent = r.classifier
      ? `Model “${r.classifier}”; highlighted labels are over their threshold: ${r.labels.length ? r.labels.join(", ") : "none"}.`
      : "";
    // downloads
    $("dl-wfdb").href = r.files.wfdb.replace(/^\//, "");
    $("dl-csv").href = r.files.csv.replace(/^\//, "");
    $("dl-json").href = r.files.json.replace(/^\//, "");
    $("dl-overlay").href = r.files.overlay.replace(/^\//, "");
    $("summary").textContent =
      `${Object.keys(r.leads).length} leads, ${r.n_samples} samples at ${r.fs} Hz; ` +
      `layout ${r.layout.name}; calibration ${r.calibration.paper_speed} mm/s, ${r.calibration.gain} mm/mV.`;
    // overlay
    $("overlay").src = r.files.overlay.replace(/^\//, "");
    // quality
    const tbody = $("quality").querySelector("tbody");
    tbody.textContent = "";
    for (const [lead, q] of Object.entries(r.quality)) {
      const tr = document.createElement("tr");
      for (const v of [lead, q.confidence.toFixed(2), q.coverage.toFixed(2), q.flags.join(", ")]) {
        const td = document.createElement("td");
        td.textContent = v;
        tr.appendChild(td);
      }
      if (q.flags.length) tr.className = "flagged";
      tbody.appendChild(tr);
    }
    plot(r);
    document.body.dataset.state = "done";
  }

  // ------------------------------------------------------------------ the 12-lead plot
  function plot(r) {
    const canvas = $("ecg");
    const cssWidth = canvas.parentElement.clientWidth - 2 || 1200;
    const duration = r.n_samples / r.fs;
    const colSeconds = duration / 4;
    const mmW = duration * 25; // 25 mm/s
    const rowsMm = 4 * 30; // 3 rows + rhythm strip, 30 mm each
    const pxPerMm = cssWidth / (mmW + 10);
    const cssHeight = Math.round(pxPerMm * (rowsMm + 6));
    const dpr = window.devicePixelRatio || 1;
    canvas.style.width = `${cssWidth}px`;
    canvas.style.height = `${cssHeight}px`;
    canvas.width = Math.round(cssWidth * dpr);
    canvas.height = Math.round(cssHeight * dpr);
    const ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, cssWidth, cssHeight);
    const x0 = 5 * pxPerMm;
    const y0 = 3 * pxPerMm;
    // paper grid: 1 mm minor, 5 mm major
    for (let mm = 0; mm <= mmW; mm += 1) {
      ctx.strokeStyle = mm % 5 === 0 ? "#f2a5a5" : "#fbe0e0";
      ctx.lineWidth = mm % 5 === 0 ? 0.8 : 0.5;
      ctx.beginPath();
      ctx.moveTo(x0 + mm * pxPerMm, y0);
      ctx.lineTo(x0 + mm * pxPerMm, y0 + rowsMm * pxPerMm);
      ctx.stroke();
    }
    for (let mm = 0; mm <= rowsMm; mm += 1) {
      ctx.strokeStyle = mm % 5 === 0 ? "#f2a5a5" : "#fbe0e0";
      ctx.lineWidth = mm % 5 === 0 ? 0.8 : 0.5;
      ctx.beginPath();
      ctx.moveTo(x0, y0 + mm * pxPerMm);
      ctx.lineTo(x0 + mmW * pxPerMm, y0 + mm * pxPerMm);
      ctx.stroke();
    }
    let drawn = 0;
    const trace = (lead, t0, t1, row) => {
      const values = r.leads[lead];
      const baseline = y0 + (15 + 30 * row) * pxPerMm;
      ctx.fillStyle = "#234";
      ctx.font = `${Math.max(10, 3.5 * pxPerMm)}px sans-serif`;
      ctx.fillText(lead, x0 + t0 * 25 * pxPerMm + 2, baseline - 9 * pxPerMm);
      if (!values) return;
      let i0 = Math.max(0, Math.floor(t0 * r.fs));
      let i1 = Math.min(values.length, Math.ceil(t1 * r.fs));
      let shift = 0;
      if (!values.slice(i0, i1).some((v) => v !== null)) {
        // printed elsewhere on the page (another layout): show its first stretch here
        const first = values.findIndex((v) => v !== null);
        if (first < 0) return;
        shift = first - i0;
        i1 = Math.min(values.length, first + (i1 - i0));
        i0 = first;
      }
      ctx.strokeStyle = "#111";
      ctx.lineWidth = 1.1;
      ctx.beginPath();
      let pen = false;
      let any = false;
      for (let i = i0; i < i1; i += 1) {
        const v = values[i];
        if (v === null || !Number.isFinite(v)) { pen = false; continue; }
        const x = x0 + ((i - shift) / r.fs) * 25 * pxPerMm;
        const y = baseline - Math.max(-14, Math.min(14, v * 10)) * pxPerMm;
        if (pen) { ctx.lineTo(x, y); } else { ctx.moveTo(x, y); pen = true; }
        any = true;
      }
      ctx.stroke();
      if (any) drawn += 1;
    };
    LAYOUT.forEach((leads, row) => {
      leads.forEach((lead, col) => trace(lead, col * colSeconds, (col + 1) * colSeconds, row));
    });
    trace(RHYTHM, 0, duration, 3);
    canvas.dataset.drawn = String(drawn);
  }

  // ------------------------------------------------------------------ wiring
  const zone = $("dropzone");
  $("file").addEventListener("change", (e) => {
    if (e.target.files.length) upload(e.target.files[0]);
  });
  ["dragenter", "dragover"].forEach((t) => zone.addEventListener(t, (e) => {
    e.preventDefault();
    zone.classList.add("over");
  }));
  ["dragleave", "drop"].forEach((t) => zone.addEventListener(t, (e) => {
    e.preventDefault();
    zone.classList.remove("over");
  }));
  zone.addEventListener("drop", (e) => {
    const files = e.dataTransfer && e.dataTransfer.files;
    if (files && files.length) upload(files[0]);
  });
  zone.addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") { e.preventDefault(); $("file").click(); }
  });
  window.addEventListener("resize", () => { if (current) plot(current); });
  fetch("health").then((r) => r.json()).then((h) => {
    $("limits").textContent = `Up to ${h.limits.max_upload_mb} MB and ${h.limits.max_pixels / 1e6} Mpx.`;
    if (!h.classifier) {
      $("limits").textContent += " This server digitizes only (no classifier loaded).";
    }
  }).catch(() => {});
  document.body.dataset.state = "ready";
})();
