// Surge live dashboard: one WebSocket on /v1/feed (topics stock, orders,
// holds; stock rows conflated), snapshots then events; reconnects by itself
// and resumes from the last seq it saw (or takes fresh snapshots when told
// to resync).
"use strict";

const TOPICS = "stock,orders,holds";
const CONFLATE_MS = 250;
const POINTS = 300; // one per second: five minutes of history
const SKU_ROWS_MAX = 50;
const ORDERS_MAX = 20;
const PAYMENTS_WINDOW_MS = 10000; // payments per second over the last 10 s
const FUNNEL = ["placed", "paid", "shipped", "delivered", "cancelled", "expired", "returned"];

const state = {
  epoch: null,
  seq: null,
  skus: new Map(), // sku -> {rows: Map(wh -> row), available}
  warehouses: new Map(), // id -> {name, enabled, capacity, tz, day, routed}
  orders: [], // newest first
  holdsThisSecond: 0,
  ordersThisSecond: 0,
  // Payment messages per second of arrival, for the last
  // PAYMENTS_WINDOW_MS: [{sec, n}], oldest first (bounded by the window,
  // whatever the rate).
  payments: [],
  // Orders by status and open fulfilments by warehouse, as the server
  // counts them (the `orders` snapshot's `counts`, then each
  // `order_counts` message): never derived here.
  counts: { funnel: {}, by_status: {}, by_payment_status: {}, open_fulfillments: {} },
  truncated: false,
};
const series = { t: [], available: [], committed: [], holds: [], orders: [] };
let ws = null;
let retry = 0;
let dirty = true;

const $ = (id) => document.getElementById(id);

function setConn(s, text) {
  const el = $("conn");
  el.dataset.state = s;
  el.textContent = text || s;
}

function connect() {
  let q = `topics=${TOPICS}&conflate_ms=${CONFLATE_MS}`;
  if (state.seq !== null && state.epoch !== null) q += `&since=${state.seq}&epoch=${state.epoch}`;
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  // With API keys the browser logged in to this page (HTTP Basic, the key
  // as the password) and sends the same credentials with this handshake by
  // itself: no key is ever in a URL or in this script.
  ws = new WebSocket(`${proto}//${location.host}/v1/feed?${q}`);
  let opened = false;
  ws.onopen = () => { opened = true; retry = 0; setConn("live"); };
  ws.onmessage = (e) => handle(JSON.parse(e.data));
  ws.onclose = () => {
    // Refused before it opened, again and again: most likely a key without
    // the `feed` scope (the server says which in its answer, which a
    // WebSocket cannot show).
    const hint = !opened && retry >= 3 ? "reconnecting (refused: does the key have the feed scope?)" : "";
    setConn("reconnecting", hint);
    retry = Math.min(retry + 1, 10);
    setTimeout(connect, 200 * retry);
  };
}

function sku(id) {
  let s = state.skus.get(id);
  if (!s) { s = { rows: new Map(), available: 0 }; state.skus.set(id, s); }
  return s;
}

function warehouse(id) {
  let w = state.warehouses.get(id);
  if (!w) {
    w = { name: id, enabled: true, capacity: null, tz: "UTC", day: null, routed: 0 };
    state.warehouses.set(id, w);
  }
  return w;
}

// A warehouse's local date (YYYY-MM-DD) at `ms` in time zone `tz`: the
// day its capacity counts on, as the server counts it (its cut-off's
// zone, else UTC).
const dateFormats = new Map();
function localDate(tz, ms) {
  let f = dateFormats.get(tz);
  if (!f) {
    try {
      f = new Intl.DateTimeFormat("en-CA", { timeZone: tz, year: "numeric", month: "2-digit", day: "2-digit" });
    } catch (_) {
      f = new Intl.DateTimeFormat("en-CA", { timeZone: "UTC", year: "numeric", month: "2-digit", day: "2-digit" });
    }
    dateFormats.set(tz, f);
  }
  return f.format(new Date(ms));
}

// One more order routed to `w` on its local date `day`: a later day
// starts again from 0, an earlier one no longer counts.
function routedOn(w, day) {
  if (w.day === null || day > w.day) { w.day = day; w.routed = 0; }
  if (day === w.day) w.routed += 1;
}

// What the workload cell shows: orders routed on the warehouse's local
// day now (0 once a new day has begun) against its capacity.
function workload(w, now) {
  const routed = w.day !== null && w.day >= localDate(w.tz, now) ? w.routed : 0;
  const full = w.capacity !== null && routed >= w.capacity;
  return {
    text: `${routed} / ${w.capacity === null ? "∞" : w.capacity}`,
    state: !w.enabled ? "disabled" : full ? "at capacity" : "open",
  };
}

// Workload figures the server sent (a snapshot, or the warehouses an
// event changed), by warehouse id: exact as of that message.
function setWorkload(byWarehouse) {
  for (const [id, wl] of Object.entries(byWarehouse || {})) {
    const w = warehouse(id);
    w.day = wl.day;
    w.routed = wl.routed;
    w.capacity = wl.capacity_per_day;
  }
}

// The server's order counts, exact as of the message that carried them.
function setCounts(c) {
  if (!c) return;
  state.counts = c;
  for (const id of Object.keys(c.open_fulfillments || {})) warehouse(id);
}

function paymentSeen(now) {
  const sec = Math.floor(now / 1000);
  const last = state.payments[state.payments.length - 1];
  if (last && last.sec === sec) last.n += 1;
  else state.payments.push({ sec, n: 1 });
  forgetPayments(now);
}

function forgetPayments(now) {
  const oldest = Math.floor((now - PAYMENTS_WINDOW_MS) / 1000);
  while (state.payments.length > 0 && state.payments[0].sec <= oldest) state.payments.shift();
}

// Payments per second over the last PAYMENTS_WINDOW_MS.
function paymentsRate(now) {
  forgetPayments(now);
  const n = state.payments.reduce((sum, b) => sum + b.n, 0);
  return ((n * 1000) / PAYMENTS_WINDOW_MS).toFixed(1);
}

function seen(seq) {
  if (typeof seq === "number" && (state.seq === null || seq > state.seq)) state.seq = seq;
}

function handle(m) {
  switch (m.type) {
    case "hello":
      if (state.epoch !== null && m.epoch !== state.epoch) state.seq = null;
      state.epoch = m.epoch;
      break;
    case "snapshot":
      snapshot(m.topic, m.data);
      seen(m.seq);
      break;
    case "event":
      event(m);
      seen(m.seq);
      break;
    case "resync_required":
      state.seq = null;
      break;
    default:
      break;
  }
  dirty = true;
}

function snapshot(topic, data) {
  if (topic === "stock") {
    state.skus.clear();
    state.truncated = !!data.truncated;
    for (const w of data.warehouses) describe(w);
    for (const s of data.skus) {
      const entry = sku(s.sku);
      entry.available = s.available;
      for (const r of s.warehouses) entry.rows.set(r.warehouse, r);
    }
  } else if (topic === "orders") {
    // Exact as of this snapshot's seq: the order events after it add up.
    for (const w of state.warehouses.values()) { w.day = null; w.routed = 0; }
    setWorkload(data.workload);
    setCounts(data.counts);
    state.orders = data.recent.slice(0, ORDERS_MAX).map((o) => ({
      id: o.id, status: o.status, lines: o.lines, shipments: o.shipments, why: why(o.routing),
    }));
  }
}

function event(m) {
  switch (m.event) {
    case "stock_changed": {
      const s = sku(m.sku);
      s.rows.set(m.warehouse, m);
      s.available = m.sku_available;
      break;
    }
    case "sold_out":
    case "back_in_stock":
      sku(m.sku).available = m.sku_available;
      break;
    case "sku_updated":
      sku(m.sku);
      break;
    case "hold_created":
      state.holdsThisSecond += 1;
      break;
    case "order_created": {
      state.ordersThisSecond += 1;
      const seenHere = new Set();
      for (const sh of m.order.shipments) {
        if (seenHere.has(sh.warehouse)) continue;
        seenHere.add(sh.warehouse);
        const w = warehouse(sh.warehouse);
        routedOn(w, localDate(w.tz, m.order.created_at));
      }
      state.orders.unshift({ id: m.order.id, status: m.order.status, lines: m.order.lines, shipments: m.order.shipments, why: why(m.order.routing) });
      state.orders.length = Math.min(state.orders.length, ORDERS_MAX);
      break;
    }
    case "warehouse_updated":
      describe(m.warehouse);
      break;
    case "order_counts":
      setCounts(m);
      break;
    case "payment_authorized":
    case "payment_captured":
    case "payment_voided":
    case "payment_failed":
    case "payment_refunded":
    case "payment_expired":
      paymentSeen(Date.now());
      break;
    case "order_status_changed": {
      const o = state.orders.find((x) => x.id === m.order_id);
      if (o) o.status = m.status;
      setWorkload(m.workload);
      break;
    }
    case "order_rerouted": {
      const o = state.orders.find((x) => x.id === m.order_id);
      if (o) {
        o.shipments = m.shipments;
        o.why = why(m.routing);
      }
      setWorkload(m.workload);
      break;
    }
    default:
      break;
  }
}

// A warehouse's name and routing attributes, from a warehouse view.
function describe(v) {
  const w = warehouse(v.id);
  w.name = v.name;
  w.enabled = v.enabled !== false;
  w.capacity = v.capacity_per_day === undefined ? null : v.capacity_per_day;
  w.tz = v.cutoff ? v.cutoff.tz : "UTC";
}

function totals() {
  let available = 0, committed = 0, soldOut = 0;
  const byWarehouse = new Map();
  for (const s of state.skus.values()) {
    available += s.available;
    if (s.rows.size > 0 && s.available === 0) soldOut += 1;
    for (const [wh, r] of s.rows) {
      committed += r.reserved + r.allocated;
      byWarehouse.set(wh, (byWarehouse.get(wh) || 0) + r.available);
    }
  }
  return { available, committed, soldOut, byWarehouse };
}

// An order's deciding rule and the distance of its chosen plan, from its
// routing trace ("" for orders placed before routing traced them).
function why(routing) {
  if (!routing) return "";
  const chosen = routing.candidates[0];
  const km = chosen ? chosen.shipments.reduce((n, s) => n + (s.distance_km || 0), 0) : 0;
  return `${routing.deciding_rule || "only plan"}, ${Math.round(km)} km`;
}

function cell(text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  return td;
}

function render() {
  if (!dirty) return;
  dirty = false;
  $("seq").textContent = state.seq === null ? "–" : state.seq;
  const t = totals();
  $("total-available").textContent = t.available;
  $("total-committed").textContent = t.committed;
  $("sold-out").textContent = t.soldOut;

  const body = document.querySelector("#stock tbody");
  const rows = [];
  const ids = [...state.skus.keys()].sort().slice(0, SKU_ROWS_MAX);
  for (const id of ids) {
    const s = state.skus.get(id);
    for (const [wh, r] of [...s.rows].sort()) {
      const tr = document.createElement("tr");
      tr.dataset.sku = id;
      tr.dataset.warehouse = wh;
      tr.append(cell(id), cell(wh), cell(r.on_hand, "on_hand"), cell(r.reserved, "reserved"),
        cell(r.allocated, "allocated"), cell(r.available, "available"));
      rows.push(tr);
    }
    const total = document.createElement("tr");
    total.className = "total" + (s.available === 0 ? " soldout" : "");
    total.dataset.sku = id;
    total.append(cell(id), cell("all"), cell(""), cell(""), cell(""), cell(s.available, "available"));
    rows.push(total);
  }
  body.replaceChildren(...rows);
  const hidden = state.skus.size - ids.length;
  $("stock-note").textContent = hidden > 0 || state.truncated ? `(first ${ids.length} of ${state.skus.size}${state.truncated ? "+" : ""})` : "";

  const wbody = document.querySelector("#warehouses tbody");
  const now = Date.now();
  wbody.replaceChildren(...[...state.warehouses].sort().map(([id, w]) => {
    const tr = document.createElement("tr");
    const load = workload(w, now);
    tr.dataset.warehouse = id;
    tr.dataset.state = load.state;
    tr.append(cell(w.name), cell(load.text, "workload"), cell(load.state, "state"),
      cell(state.counts.open_fulfillments[id] || 0, "open"), cell(t.byWarehouse.get(id) || 0, "available"));
    return tr;
  }));

  const funnel = state.counts.funnel || {};
  const placed = funnel.placed || 0;
  for (const stage of FUNNEL) {
    const tr = document.querySelector(`#funnel tr[data-stage="${stage}"]`);
    const n = funnel[stage] || 0;
    tr.querySelector(".n").textContent = n;
    tr.querySelector(".bar div").style.width = placed > 0 ? `${Math.round((100 * n) / placed)}%` : "0";
  }
  $("statuses").replaceChildren(...Object.entries(state.counts.by_status || {}).sort().map(([status, n]) => {
    const chip = document.createElement("span");
    chip.dataset.status = status;
    const b = document.createElement("b");
    b.className = "n";
    b.textContent = n;
    chip.append(`${status.replace(/_/g, " ")} `, b);
    return chip;
  }));
  $("payments-rate").textContent = paymentsRate(Date.now());

  const obody = document.querySelector("#orders tbody");
  obody.replaceChildren(...state.orders.map((o) => {
    const tr = document.createElement("tr");
    tr.dataset.order = o.id;
    tr.append(cell(o.id), cell(o.status, "status"),
      cell(o.lines.map((l) => `${l.qty}× ${l.sku}`).join(", ")),
      cell(o.shipments.map((s) => s.warehouse).join(", "), "routed"),
      cell(o.why, "why"));
    return tr;
  }));
}

function chart(el, labels, colors) {
  const opts = {
    width: el.clientWidth || 500,
    height: 200,
    series: [{}].concat(labels.map((label, i) => ({ label, stroke: colors[i], width: 2 }))),
    axes: [{ stroke: "#8a96a3" }, { stroke: "#8a96a3", size: 80 }],
  };
  return new uPlot(opts, [[]].concat(labels.map(() => [])), el);
}

let sellChart = null;
let rateChart = null;

function tick() {
  const t = totals();
  const now = Date.now() / 1000;
  series.t.push(now);
  series.available.push(t.available);
  series.committed.push(t.committed);
  series.holds.push(state.holdsThisSecond);
  series.orders.push(state.ordersThisSecond);
  $("holds-rate").textContent = state.holdsThisSecond;
  $("orders-rate").textContent = state.ordersThisSecond;
  $("payments-rate").textContent = paymentsRate(Date.now());
  state.holdsThisSecond = 0;
  state.ordersThisSecond = 0;
  for (const k of Object.keys(series)) if (series[k].length > POINTS) series[k].shift();
  if (typeof uPlot !== "undefined") {
    sellChart = sellChart || chart($("chart-sell"), ["available", "committed"], ["#3fb950", "#58a6ff"]);
    rateChart = rateChart || chart($("chart-rate"), ["holds/s", "orders/s"], ["#d29922", "#bc8cff"]);
    sellChart.setData([series.t, series.available, series.committed]);
    rateChart.setData([series.t, series.holds, series.orders]);
  }
}

setInterval(render, 200);
setInterval(tick, 1000);
connect();
