// The comparison page: one POST /search with stages=true fills the three columns.
//
// Every string from the catalog or the shopper reaches the page through
// textContent or a property, never through HTML parsing, so a product titled
// "<img onerror=...>" is shown as text. The server's Content-Security-Policy
// forbids inline scripts as a second line of defence.
//
// The related column shows GET /products/{id}/similar for the opened final
// result, or the search's fallback block when it found few relevant results.
//
// Impressions and clicks on the final column go to POST /ubi/events with the
// search's query id, in the UBI schema, as a shop's front end would send them.
"use strict";

const PAGE_SIZE = 10;
const STAGES = ["lexical", "fusion", "final"];

const ubi = {
  enabled: true,
  clientId: storedId(window.localStorage, "search-rerank-client-id"),
  sessionId: storedId(window.sessionStorage, "search-rerank-session-id"),
  queryId: null,
  query: "",
};

function storedId(storage, key) {
  let id = storage.getItem(key);
  if (!id) {
    id = window.crypto && crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random().toString(16).slice(2)}`;
    storage.setItem(key, id);
  }
  return id;
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

function filters() {
  const out = {};
  const category = document.getElementById("category").value.trim();
  const brand = document.getElementById("brand").value.trim();
  const min = document.getElementById("price-min").value;
  const max = document.getElementById("price-max").value;
  if (category) out.category = category;
  if (brand) out.brand = brand;
  if (min !== "") out.price_min = Number(min);
  if (max !== "") out.price_max = Number(max);
  return out;
}

async function search(event) {
  event.preventDefault();
  const query = document.getElementById("query").value.trim();
  if (!query) return;
  setStatus("Searching…");
  let response;
  let body;
  try {
    response = await fetch("/search", {
      method: "POST",
      headers: {"Content-Type": "application/json", "X-Ubi-Client-Id": ubi.clientId,
                "X-Ubi-Session-Id": ubi.sessionId},
      body: JSON.stringify({query, size: PAGE_SIZE, stages: true, explain: true, filters: filters()}),
    });
    body = await response.json();
  } catch (error) {
    setStatus(`Search failed: ${error}`, true);
    return;
  }
  if (!response.ok) {
    const fields = (body.fields || []).map((f) => `${f.field}: ${f.message}`).join("; ");
    setStatus(`${body.error}${fields ? ` (${fields})` : ""}`, true);
    return;
  }
  render(body);
  ubi.queryId = body.meta.query_id;
  ubi.query = query;
  sendImpressions(body.stages.final);
}

function setStatus(text, isError = false) {
  const status = document.getElementById("status");
  status.textContent = text;
  status.classList.toggle("error", isError);
}

function render(body) {
  const notRun = {...body.skipped, ...body.degraded};
  for (const stage of STAGES) {
    const column = document.querySelector(`.column[data-stage="${stage}"]`);
    const list = column.querySelector(".results");
    const ids = body.stages[stage];
    const note = column.querySelector(".note");
    note.textContent = ids ? (ids.length ? "" : "No results") : `Not run: ${notRun[stage] || "unknown"}`;
    list.replaceChildren(...(ids || []).map((id, rank) => resultItem(body.stage_products[id], stage, rank)));
  }
  const degraded = Object.entries(body.degraded).map(([stage, why]) => `${stage}: ${why}`);
  const took = body.timings_ms.total !== undefined ? ` in ${body.timings_ms.total.toFixed(0)} ms` : "";
  setStatus(`${body.total} candidates${took}${degraded.length ? ` — degraded: ${degraded.join("; ")}` : ""}`);
  fillSuggestions(Object.values(body.stage_products));
  if (body.fallback) {
    showRelated(body.fallback.hits, "Few relevant results: related products");
  } else {
    showRelated([], "Open a final result to see products similar to it.");
  }
}

function showRelated(hits, note) {
  const column = document.querySelector('.column[data-stage="related"]');
  column.querySelector(".note").textContent = note;
  column.querySelector(".results").replaceChildren(...hits.map((hit, rank) => resultItem(hit, "related", rank)));
}

async function showSimilar(id, title) {
  try {
    const response = await fetch(`/products/${encodeURIComponent(id)}/similar?size=5`);
    const body = await response.json();
    if (!response.ok) throw new Error(body.message || body.error);
    const why = Object.values(body.degraded || {});
    showRelated(body.hits, why.length ? `No similar products: ${why.join("; ")}` : `Similar to ${title}`);
  } catch (err) {
    showRelated([], `Similar products unavailable: ${err.message}`);
  }
}

function resultItem(hit, stage, rank) {
  const product = hit.product;
  const item = element("li", "result");
  item.dataset.id = hit.id;
  item.tabIndex = 0;
  const head = element("div", "head");
  head.append(element("span", "title", product.title));
  if (hit.long_tail) {
    const badge = element("span", "badge long-tail", "long tail");
    badge.title = "outside the catalog's popular head";
    head.append(badge);
  }
  item.append(head);
  const facts = [
    product.brand,
    (product.category || []).join(" › "),
    product.price !== undefined ? `$${Number(product.price).toFixed(2)}` : null,
    product.rating !== undefined ? `★ ${Number(product.rating).toFixed(1)}` : null,
  ].filter(Boolean);
  item.append(element("div", "facts", facts.join(" · ")));
  item.append(explanationOf(hit));
  const open = () => {
    item.classList.toggle("open");
    highlight(hit.id);
    if (stage === "final" && item.classList.contains("open")) {
      sendEvents([resultEvent("click", hit.id, rank)]);
      showSimilar(hit.id, product.title);
    }
  };
  item.addEventListener("click", open);
  item.addEventListener("keydown", (e) => { if (e.key === "Enter") open(); });
  return item;
}

function explanationOf(hit) {
  const list = element("dl", "explanation");
  list.append(element("dt", null, "id"), element("dd", null, hit.id));
  for (const [name, value] of Object.entries(hit.explanation || {})) {
    const shown = Array.isArray(value) ? value.join(", ") : typeof value === "number" ? round(value) : value;
    list.append(element("dt", null, name), element("dd", null, shown));
  }
  return list;
}

function round(value) {
  return Number.isInteger(value) ? String(value) : value.toFixed(4);
}

function highlight(id) {
  for (const item of document.querySelectorAll(".result")) {
    item.classList.toggle("same-product", item.dataset.id === id);
  }
}

function fillSuggestions(hits) {
  const options = (id, values) => {
    const list = document.getElementById(id);
    list.replaceChildren(...[...new Set(values.filter(Boolean))].sort().map((value) => {
      const option = document.createElement("option");
      option.value = value;
      return option;
    }));
  };
  options("brands", hits.map((h) => h.product.brand));
  options("categories", hits.flatMap((h) => (h.product.category || []).map((_, depth, path) =>
    path.slice(0, depth + 1).join(" > "))));
}

function resultEvent(action, id, rank) {
  return {
    action_name: action,
    query_id: ubi.queryId,
    client_id: ubi.clientId,
    session_id: ubi.sessionId,
    user_query: ubi.query,
    timestamp: new Date().toISOString(),
    event_attributes: {object: {object_id: id, object_id_field: "id"}, position: {ordinal: rank}},
  };
}

function sendImpressions(ids) {
  if (ids && ids.length) sendEvents(ids.map((id, rank) => resultEvent("impression", id, rank)));
}

function sendEvents(events) {
  if (!ubi.enabled || !ubi.queryId) return;
  fetch("/ubi/events", {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(events)})
    .then((response) => { if (response.status === 404) ubi.enabled = false; })  // UBI logging is off here
    .catch(() => {});
}

document.getElementById("search-form").addEventListener("submit", search);
