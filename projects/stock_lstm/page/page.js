import { guarded, modelInfo, onFile, predict, showError } from "/static/pages.js";
import { parsePrices } from "./prices.js";

// page.json (projects/stock_lstm/export.py page_info): window_days, lookback, warmup, test_period and the
// run's own last days under "tickers"; the measured errors come from the run's test_* metrics.
const select = document.getElementById("ticker");
const SVG = "http://www.w3.org/2000/svg";
const SHOWN_DAYS = 10;
let info = {};

/** A price with the digits it needs: cents above 10, four decimals below. */
function price(value) {
  return value.toFixed(Math.abs(value) < 10 ? 4 : 2);
}

/** The run's measured error against predicting no change (persistence), as a sentence. */
function skillText(metrics) {
  const model = metrics.test_rmse_return, none = metrics.test_persistence_rmse_return;
  if (typeof model !== "number" || typeof none !== "number") {
    return "This run's test errors are not available (the server found no test_rmse_return in its metrics.json).";
  }
  const days = typeof metrics.test_days === "number" ? `${metrics.test_days} ` : "";
  const period = info.test_period ? ` (${info.test_period[0]} to ${info.test_period[1]})` : "";
  const change = 100 * (1 - model / none);
  const verdict = model < none ? `${change.toFixed(1)}% lower` : `${(-change).toFixed(1)}% higher: no better than no change`;
  return `On its ${days}walk-forward test days${period}, this model's error (RMSE of the next-day log return) ` +
    `was ${model.toFixed(5)}, against ${none.toFixed(5)} for predicting no change (${verdict}). ` +
    "A day's move is mostly noise: read the forecast as a small tilt, not a price target.";
}

function svg(tag, attributes, text) {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, String(value));
  if (text !== undefined) element.textContent = text;
  return element;
}

/** The closes sent, then a dashed step to the forecast close. */
function plot(dates, closes, forecast) {
  const width = 600, height = 220, left = 62, right = 14, top = 12, bottom = 26;
  const values = [...closes, forecast];
  const low = Math.min(...values), high = Math.max(...values), span = high - low || 1;
  const x = (i) => left + (i * (width - left - right)) / closes.length;
  const y = (v) => top + ((high - v) * (height - top - bottom)) / span;
  const line = closes.map((c, i) => `${x(i).toFixed(1)},${y(c).toFixed(1)}`).join(" ");
  const last = closes.length - 1;
  const chart = svg("svg", {
    viewBox: `0 0 ${width} ${height}`,
    role: "img",
    "aria-label": `closes from ${dates[0]} to ${dates[last]}, ${price(closes[0])} to ${price(closes[last])}, ` +
      `and the forecast ${price(forecast)}`,
  });
  chart.append(
    svg("line", { x1: left, y1: top, x2: left, y2: height - bottom, stroke: "#9aa3b2" }),
    svg("line", { x1: left, y1: height - bottom, x2: width - right, y2: height - bottom, stroke: "#9aa3b2" }),
    svg("polyline", { points: line, fill: "none", stroke: "#1d2330", "stroke-width": 2 }),
    svg("line", { x1: x(last), y1: y(closes[last]), x2: x(closes.length), y2: y(forecast), stroke: "#2456c7",
      "stroke-width": 2, "stroke-dasharray": "5 4" }),
    svg("circle", { cx: x(closes.length), cy: y(forecast), r: 5, fill: "#2456c7" }),
    svg("text", { x: left - 6, y: top + 10, "text-anchor": "end", "font-size": 12 }, price(high)),
    svg("text", { x: left - 6, y: height - bottom, "text-anchor": "end", "font-size": 12 }, price(low)),
    svg("text", { x: left, y: height - 6, "font-size": 12 }, dates[0]),
    svg("text", { x: width - right, y: height - 6, "text-anchor": "end", "font-size": 12 }, `${dates[last]}, then the forecast`),
  );
  document.getElementById("plot").replaceChildren(chart);
}

/** The last SHOWN_DAYS rows sent, newest last. */
function table(dates, ohlcv) {
  const start = Math.max(0, dates.length - SHOWN_DAYS);
  document.getElementById("days-caption").textContent =
    `The last ${dates.length - start} of the ${dates.length} days sent (adjusted prices):`;
  document.getElementById("days").replaceChildren(
    ...dates.slice(start).map((date, i) => {
      const row = document.createElement("tr");
      const cells = [date, ...ohlcv[start + i].slice(0, 4).map(price), String(Math.round(ohlcv[start + i][4]))];
      for (const [k, text] of cells.entries()) {
        const cell = document.createElement("td");
        cell.textContent = text;
        if (k > 0) cell.className = "number";
        row.append(cell);
      }
      return row;
    }),
  );
}

function clearAnswer() {
  for (const id of ["close", "log-return"]) document.getElementById(id).textContent = "-";
  document.getElementById("percent").textContent = "";
  document.getElementById("source").textContent = "No forecast.";
  document.getElementById("plot").replaceChildren();
  document.getElementById("days").replaceChildren();
}

/** Sends the window (the last window_days rows, oldest first) and shows the forecast beside it. */
async function forecast(name, dates, ohlcv) {
  await guarded(async () => {
    clearAnswer();
    const reply = await predict({ instances: [{ ohlcv }] });
    const { log_return: logReturn, close_forecast: close } = reply.predictions[0];
    const lastClose = ohlcv[ohlcv.length - 1][3];
    document.getElementById("source").textContent =
      `${name}: ${dates.length} days, ${dates[0]} to ${dates[dates.length - 1]}. Forecast for the next trading ` +
      `day after ${dates[dates.length - 1]}:`;
    document.getElementById("close").textContent = price(close);
    document.getElementById("log-return").textContent = `${logReturn >= 0 ? "+" : ""}${logReturn.toFixed(5)}`;
    document.getElementById("percent").textContent =
      `(${logReturn >= 0 ? "+" : ""}${(100 * Math.expm1(logReturn)).toFixed(3)}% from the last close, ${price(lastClose)})`;
    plot(dates, ohlcv.map((row) => row[3]), close);
    table(dates, ohlcv);
  });
}

async function fromFile(file) {
  select.value = "";
  const note = document.getElementById("dropped");
  note.hidden = true;
  let prices;
  try {
    prices = parsePrices(await file.text(), file.name);
  } catch (error) {
    clearAnswer();
    showError(error.message);
    return;
  }
  const needed = info.window_days;
  const dropped = prices.dropped.length ? `; ${prices.dropped.length} row(s) dropped: ${prices.dropped.slice(0, 3).join("; ")}` : "";
  if (prices.dates.length < needed) {
    clearAnswer();
    showError(`${file.name} has ${prices.dates.length} usable days; this model needs the last ${needed} ` +
      `(${info.lookback} days of features, each needing the ${info.warmup} days before it)${dropped}`);
    return;
  }
  note.textContent = dropped ? `${file.name}${dropped}` : "";
  note.hidden = !dropped;
  await forecast(file.name, prices.dates.slice(-needed), prices.ohlcv.slice(-needed));
}

async function main() {
  const entry = await modelInfo();
  info = entry.info;
  if (!info.window_days) {
    throw new Error("this export has no page description (assets.extra/page.json): export the run again");
  }
  document.getElementById("window-days").textContent = String(info.window_days);
  for (const [name, days] of Object.entries(info.tickers || {})) {
    select.add(new Option(`${name} (to ${days.dates[days.dates.length - 1]})`, name));
  }
  document.getElementById("skill").textContent = skillText(entry.metrics);
  select.addEventListener("change", () => {
    const days = info.tickers[select.value];
    document.getElementById("dropped").hidden = true;
    if (days) forecast(select.value, days.dates, days.ohlcv);
  });
  const input = document.getElementById("file");
  onFile(document.getElementById("drop"), input, async (file) => {
    await fromFile(file);
    input.value = ""; // choosing the same file again is a change again
  });
}

main().catch((error) => showError(error.message));
