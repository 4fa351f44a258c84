// A daily prices CSV read as projects/stock_lstm/data.py read_prices reads it: the Yahoo layout (Date, Open,
// High, Low, Close, [Adj Close,] Volume, any case, "_" as a space), unusable rows dropped and named by line,
// rows sorted by date with the first of a repeated date kept, and with an Adj Close column the prices
// scaled by Adj Close / Close and the volume by its inverse.

export const COLUMNS = ["Open", "High", "Low", "Close", "Volume"];

/** The fields of one CSV line (quotes as Python's csv module reads them). */
function fieldsOf(line) {
  const fields = [];
  let field = "", quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') { field += '"'; i++; }
      else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") { fields.push(field); field = ""; }
    else field += c;
  }
  fields.push(field);
  return fields;
}

/** The day written at the start of `text` (a time or UTC offset may follow), as "YYYY-MM-DD", or null. */
function dayOf(text) {
  const match = /^(\d{4})-(\d{2})-(\d{2})([ T].*)?$/.exec(text);
  if (!match) return null;
  const [year, month, day] = match.slice(1, 4).map(Number);
  const date = new Date(Date.UTC(year, month - 1, day));
  const real = date.getUTCFullYear() === year && date.getUTCMonth() === month - 1 && date.getUTCDate() === day;
  return real ? text.slice(0, 10) : null;
}

/** A number as pandas.to_numeric reads one; NaN for a blank or for text (Number("") would be 0). */
function numberOf(text) {
  return text.trim() === "" ? NaN : Number(text);
}

/** Why a row cannot be used, or null. */
function rowProblem(day, values, texts) {
  if (day === null) return `Date '${texts.Date}' is not a date (YYYY-MM-DD)`;
  for (const [column, value] of Object.entries(values)) {
    if (!Number.isFinite(value)) return `${column} '${texts[column]}' is not a number`;
    if (column !== "Volume" && value <= 0) return `${column} is ${texts[column]}: prices must be positive`;
    if (value < 0) return `Volume is ${texts[column]}: it cannot be negative`;
  }
  return null;
}

/**
 * The usable rows of a CSV's text: { dates, ohlcv: [[o, h, l, c, v], ...], dropped: ["line 5: ..."] }.
 * Throws an Error naming the missing columns when the header lacks one.
 */
export function parsePrices(text, name) {
  const lines = text.replace(/^\ufeff/, "").split(/\r\n|\n|\r/);
  const header = fieldsOf(lines[0] || "").map((cell) => cell.trim());
  const at = new Map(header.map((cell, i) => [cell.toLowerCase().replaceAll("_", " "), i]));
  const missing = ["Date", ...COLUMNS].filter((column) => !at.has(column.toLowerCase()));
  if (missing.length) {
    const found = header.some((cell) => cell) ? header.join(", ") : "an empty file";
    throw new Error(`${name}: no column ${missing.join(", ")}; the header must name Date, Open, High, Low, Close, ` +
      `Volume (Adj Close optional); found ${found}`);
  }
  const numeric = [...COLUMNS, ...(at.has("adj close") ? ["Adj Close"] : [])];
  const rows = [], dropped = [];
  lines.slice(1).forEach((line, i) => {
    const number = i + 2;
    const fields = fieldsOf(line);
    if (!fields.some((cell) => cell.trim())) return; // a blank line is no row
    if (fields.length !== header.length) {
      dropped.push(`line ${number}: ${fields.length} fields, the header has ${header.length}`);
      return;
    }
    const texts = { Date: fields[at.get("date")].trim() };
    for (const column of numeric) texts[column] = fields[at.get(column.toLowerCase())].trim();
    const values = Object.fromEntries(numeric.map((column) => [column, numberOf(texts[column])]));
    const day = dayOf(texts.Date);
    const reason = rowProblem(day, values, texts);
    if (reason) dropped.push(`line ${number}: ${reason}`);
    else rows.push({ day, values });
  });
  rows.sort((a, b) => (a.day < b.day ? -1 : a.day > b.day ? 1 : 0)); // stable: a repeated date keeps its first
  const kept = rows.filter((row, i) => i === 0 || row.day !== rows[i - 1].day);
  return {
    dates: kept.map((row) => row.day),
    ohlcv: kept.map(({ values }) => {
      const factor = "Adj Close" in values ? values["Adj Close"] / values.Close : 1;
      const [open, high, low, close, volume] = COLUMNS.map((column) => values[column]);
      return [open * factor, high * factor, low * factor, close * factor, volume / factor];
    }),
    dropped,
  };
}
