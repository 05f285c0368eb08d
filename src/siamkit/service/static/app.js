// The service's page: compare two files, search the index, read the model card. No dependencies.
"use strict";

const $ = (id) => document.getElementById(id);
const ACCEPT = { image: "image/*", audio: ".wav,audio/wav,audio/x-wav" };
const state = { card: null, query: null };

function headers() {
  const key = sessionStorage.getItem("siamkit-api-key");
  return key ? { "X-API-Key": key } : {};
}

async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: { ...headers(), ...(options.headers || {}) } });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = new Error(body.error || `the service answered ${response.status}`);
    error.status = response.status;
    throw error;
  }
  return body;
}

// Thumbnails and the report are plain GETs: with --protect-reads an <img src> or a link would go
// without the key, so with a key set they are fetched with it and shown from a blob URL.
async function keyedURL(path) {
  if (!sessionStorage.getItem("siamkit-api-key")) {
    return path;
  }
  const response = await fetch(path, { headers: headers() });
  if (!response.ok) {
    throw new Error(`${path}: the service answered ${response.status}`);
  }
  return URL.createObjectURL(await response.blob());
}

function thumbnail(item) {
  const img = document.createElement("img");
  img.alt = `item ${item.id}`;
  keyedURL(item.thumbnail).then((url) => { img.src = url; }, () => { img.alt = `item ${item.id} (no thumbnail)`; });
  return img;
}

function showError(id, error) {
  const box = $(id);
  box.textContent = error ? String(error.message || error) : "";
  box.hidden = !error;
}

function fmt(x, digits = 4) {
  return typeof x === "number" ? x.toFixed(digits) : "–";
}

function span(className, text) {
  const element = document.createElement("span");
  element.className = className;
  element.textContent = text;
  return element;
}

// -- tabs: arrow keys move between them, as for any tab list -------------------------------------
const tabs = ["compare", "search", "model"].map((name) => $(`tab-${name}`));
function select(tab) {
  for (const t of tabs) {
    const on = t === tab;
    t.setAttribute("aria-selected", String(on));
    t.tabIndex = on ? 0 : -1;
    $(t.getAttribute("aria-controls")).hidden = !on;
  }
  tab.focus();
}
tabs.forEach((tab, i) => {
  tab.addEventListener("click", () => select(tab));
  tab.addEventListener("keydown", (event) => {
    const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
    if (step) select(tabs[(i + step + tabs.length) % tabs.length]);
  });
});

// -- files: previews and drag and drop -----------------------------------------------------------
function preview(file, box) {
  box.replaceChildren();
  if (!file) return;
  const url = URL.createObjectURL(file);
  const audio = /\.wav$/i.test(file.name) || (file.type || "").startsWith("audio/");
  const media = document.createElement(audio ? "audio" : "img");
  media.src = url;
  if (audio) media.controls = true;
  else media.alt = `preview of ${file.name}`;
  media.addEventListener("error", () => {  // not an image the browser can show; the service says why on upload
    const note = span("noimage", "no preview");
    media.replaceWith(note);
  });
  const name = span("meta", file.name);
  box.append(media, name);
}

for (const zone of document.querySelectorAll(".drop")) {
  const input = $(zone.dataset.input);
  const box = zone.querySelector(".preview");
  input.addEventListener("change", () => preview(input.files[0], box));
  zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    if (event.dataTransfer.files.length) {
      input.files = event.dataTransfer.files;
      input.dispatchEvent(new Event("change"));
    }
  });
}

// -- compare -------------------------------------------------------------------------------------
function showComparison(result) {
  const decision = $("decision");
  decision.textContent = result.same ? "Same: these match" : "Different: these do not match";
  decision.className = `decision ${result.decision}`;
  $("score").textContent = `${fmt(result.score)} (${result.output_kind})`;
  const direction = result.higher_is_similar ? "at least" : "at most";
  $("threshold").textContent = `${direction} ${fmt(result.threshold)} — ${result.threshold_source}`;
  $("distance").textContent = `${fmt(result.distance)} (${result.distance_name})`;
  $("similarity").textContent = `${fmt(result.similarity)} (${result.similarity_kind})`;
  $("compare-result").hidden = false;
}

async function compare(form) {
  showError("compare-error", null);
  $("compare-result").hidden = true;
  try {
    const a = $("file-a").files[0];
    if (!a) throw new Error("choose the first file");
    form.append("a", a);
    if (!form.has("b_item")) {
      const b = $("file-b").files[0];
      if (!b) throw new Error("choose the second file");
      form.append("b", b);
    }
    $("compare-button").disabled = true;
    showComparison(await api("/v1/compare", { method: "POST", body: form }));
  } catch (error) {
    showError("compare-error", error);
  } finally {
    $("compare-button").disabled = false;
  }
}

$("compare-form").addEventListener("submit", (event) => { event.preventDefault(); compare(new FormData()); });

// -- search --------------------------------------------------------------------------------------
function resultCard(item) {
  const li = document.createElement("li");
  const button = document.createElement("button");
  button.type = "button";
  button.setAttribute("aria-label", `item ${item.id}, label ${item.label ?? "none"}: compare with the query`);
  if (item.thumbnail) {
    button.append(thumbnail(item));
  } else {
    const none = span("noimage", "no image");
    button.append(none);
  }
  const label = span("meta", `#${item.rank} · ${item.label ?? "no label"}`);
  const distance = span("meta", `distance ${fmt(item.distance)}`);
  button.append(label, distance);
  if (item.match !== null && item.match !== undefined) {
    const badge = span(`badge ${item.match ? "match" : "nomatch"}`, item.match ? "match" : "no match");
    button.append(badge);
  }
  button.addEventListener("click", () => compareWithItem(item));
  li.append(button);
  return li;
}

async function compareWithItem(item) {
  // The query becomes the first file; the item is named by its id, never by a path.
  const transfer = new DataTransfer();
  transfer.items.add(state.query);
  $("file-a").files = transfer.files;
  preview(state.query, $("preview-a"));
  $("file-b").value = "";
  const box = $("preview-b");
  box.replaceChildren();
  const name = span("meta", `index item ${item.id} (${item.label ?? "no label"})`);
  if (item.thumbnail) {
    box.append(thumbnail(item));
  }
  box.append(name);
  select($("tab-compare"));
  const form = new FormData();
  form.append("b_item", String(item.id));
  await compare(form);
}

$("search-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  showError("search-error", null);
  const list = $("search-results");
  list.replaceChildren();
  $("search-hint").hidden = true;
  try {
    const file = $("search-file").files[0];
    if (!file) throw new Error("choose a query file");
    state.query = file;
    const form = new FormData();
    form.append("files", file);
    form.append("k", $("search-k").value);
    $("search-button").disabled = true;
    const found = await api("/v1/search", { method: "POST", body: form });
    const results = found.queries[0].results;
    list.append(...results.map(resultCard));
    $("search-hint").hidden = results.length === 0;
  } catch (error) {
    showError("search-error", error);
  } finally {
    $("search-button").disabled = false;
  }
});

// -- the model card ------------------------------------------------------------------------------
const HEADLINE = ["test_roc_auc", "test_accuracy", "test_eer", "precision_at_1", "map_at_r"];

function showCard(card) {
  state.card = card;
  $("run-name").textContent = card.run;
  const towerA = card.towers.a, towerB = card.two_tower ? card.towers.b : card.towers.a;
  $("file-a").accept = ACCEPT[towerA];
  $("file-b").accept = ACCEPT[towerB];
  $("search-file").accept = Object.values(card.towers).map((t) => ACCEPT[t]).join(",");
  if (card.two_tower) {
    $("label-a").textContent = `First file (${towerA}, tower a)`;
    $("label-b").textContent = `Second file (${towerB}, tower b)`;
  }
  const threshold = card.threshold
    ? `${fmt(card.threshold.value)} — ${card.threshold.source}` : "none: run `siamkit evaluate` to calibrate one";
  const rows = [
    ["Run", card.run],
    ["Backbone", card.backbone ?? "–"],
    ["Distance", card.distance],
    ["Inputs", card.two_tower ? `${towerA} ${JSON.stringify(card.input_shape)} and ${towerB} ${JSON.stringify(card.input_shape_b)}`
                             : `${towerA} ${JSON.stringify(card.input_shape)}`],
    ["Threshold", threshold],
    ["Chosen on", card.calibration && card.threshold && card.threshold.source.startsWith("calibration")
      ? `${card.calibration.chosen_on ?? "–"} (${card.calibration.protocol ?? ""})` : "–"],
    ["Index", card.index ? `${card.index.size} items (${card.index.backend}, ${card.index.distance})` : "none"],
    ["Fingerprint", card.fingerprint.slice(0, 12)],
  ];
  $("model-card").replaceChildren(...rows.flatMap(([k, v]) => {
    const dt = document.createElement("dt"), dd = document.createElement("dd");
    dt.textContent = k;
    dd.textContent = v;
    return [dt, dd];
  }));
  const body = $("model-metrics").tBodies[0];
  body.replaceChildren(...HEADLINE.filter((k) => k in card.metrics).map((k) => {
    const tr = document.createElement("tr");
    for (const text of [k, fmt(card.metrics[k])]) {
      const td = document.createElement("td");
      td.textContent = text;
      tr.append(td);
    }
    return tr;
  }));
  $("report-link").hidden = !card.report;
  const noIndex = !card.index;
  $("no-index").hidden = !noIndex;
  $("search-form").hidden = noIndex;
}

async function loadCard() {
  try {
    showCard(await api("/v1/model"));
    showError("page-error", null);
  } catch (error) {
    showError("page-error", error);
    if (error.status === 401) {
      $("key-box").open = true;  // the service protects reads: ask for the key
    }
  }
}

$("report-link").querySelector("a").addEventListener("click", async (event) => {
  if (!sessionStorage.getItem("siamkit-api-key")) {
    return;  // an open service: the plain link
  }
  event.preventDefault();
  const tab = window.open("about:blank", "_blank");  // opened within the click, so no pop-up blocker stops it
  try {
    tab.location.href = await keyedURL("/report");
    showError("page-error", null);
  } catch (error) {
    tab.close();
    showError("page-error", error);
  }
});

$("api-key").value = sessionStorage.getItem("siamkit-api-key") || "";
$("api-key").addEventListener("change", () => {
  sessionStorage.setItem("siamkit-api-key", $("api-key").value);
  loadCard();
});
loadCard();
