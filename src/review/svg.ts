import type { BurnDown, Ranked } from './query.js';

/**
 * Charts as plain SVG, drawn here so the page needs no chart library. Every label comes from the
 * log (tool names, teams, budget names are caller data): it is XML-escaped and cut to a display
 * length, with the whole value in a <title>. The SVG carries no script and no external reference.
 */

export function xmlEscape(s: string): string {
  let out = '';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === '&') out += '&amp;';
    else if (ch === '<') out += '&lt;';
    else if (ch === '>') out += '&gt;';
    else if (ch === '"') out += '&quot;';
    else if (ch === "'") out += '&#39;';
    // Characters XML 1.0 forbids (C0 controls but tab/newline, surrogates, U+FFFE/F) would make the document invalid.
    else if ((c < 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) || (c >= 0xd800 && c <= 0xdfff) || c === 0xfffe || c === 0xffff) out += '\ufffd';
    else out += ch;
  }
  return out;
}

function cut(s: string, n: number): string {
  const chars = [...s];
  return chars.length <= n ? s : chars.slice(0, n - 1).join('') + '…';
}

const FONT = 'font-family="sans-serif" font-size="12"';
const COLORS = ['#c0392b', '#2471a3', '#1e8449', '#b9770e'];

function frame(width: number, height: number, title: string, body: string): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img">` +
    `<title>${xmlEscape(title)}</title><rect width="100%" height="100%" fill="#fff"/>` +
    `<text x="8" y="18" ${FONT} font-weight="bold">${xmlEscape(cut(title, 70))}</text>${body}</svg>`;
}

/** Horizontal bars, largest first: label on the left, count at the bar's end. */
export function barChart(title: string, rows: Ranked[], width = 520): string {
  const barH = 20;
  const top = 30;
  const labelW = 210;
  const height = top + Math.max(1, rows.length) * (barH + 4) + 8;
  if (rows.length === 0) return frame(width, height, title, `<text x="8" y="${top + 14}" ${FONT} fill="#666">nothing matches</text>`);
  const max = Math.max(...rows.map((r) => r.count));
  const span = width - labelW - 60;
  const bars = rows.map((r, i) => {
    const y = top + i * (barH + 4);
    const w = Math.max(1, Math.round((r.count / max) * span));
    return `<g><title>${xmlEscape(r.key)}: ${r.count}</title>` +
      `<text x="${labelW - 6}" y="${y + 14}" ${FONT} text-anchor="end">${xmlEscape(cut(r.key, 30))}</text>` +
      `<rect x="${labelW}" y="${y}" width="${w}" height="${barH}" fill="${COLORS[0]}"/>` +
      `<text x="${labelW + w + 4}" y="${y + 14}" ${FONT}>${r.count}</text></g>`;
  }).join('');
  return frame(width, height, title, bars);
}

function shortNumber(n: number): string {
  const a = Math.abs(n);
  if (a >= 1e9) return `${+(n / 1e9).toFixed(1)}G`;
  if (a >= 1e6) return `${+(n / 1e6).toFixed(1)}M`;
  if (a >= 1e3) return `${+(n / 1e3).toFixed(1)}k`;
  return String(Math.round(n));
}

function shortTime(ms: number, spanMs: number): string {
  const iso = new Date(ms).toISOString();
  return spanMs > 2 * 86_400_000 ? iso.slice(0, 10) : iso.slice(5, 16).replace('T', ' ');
}

/** Lines over time: a team's budgets remaining (with each limit dashed), or its cumulative tokens. */
export function burnChart(b: BurnDown, width = 520, height = 220): string {
  const title = b.kind === 'budget' ? `Budget remaining — team ${b.team}` : `Tokens used — team ${b.team} (no budget in the records)`;
  const points = b.series.flatMap((s) => s.points);
  if (points.length === 0) return frame(width, height, title, `<text x="8" y="44" ${FONT} fill="#666">no records</text>`);
  const left = 56, right = 12, top = 30, bottom = 40;
  const values = [...points.map((p) => p[1]), ...b.series.map((s) => s.limit ?? 0), 0];
  const maxV = Math.max(1, ...values);
  const t0 = b.from, t1 = Math.max(b.to, b.from + 1);
  const x = (t: number): number => left + ((Math.min(t, t1) - t0) / (t1 - t0)) * (width - left - right);
  const y = (v: number): number => top + (1 - v / maxV) * (height - top - bottom);
  let body = `<line x1="${left}" y1="${y(0)}" x2="${width - right}" y2="${y(0)}" stroke="#999"/>` +
    `<line x1="${left}" y1="${top}" x2="${left}" y2="${y(0)}" stroke="#999"/>` +
    `<text x="${left - 4}" y="${top + 4}" ${FONT} text-anchor="end">${shortNumber(maxV)}</text>` +
    `<text x="${left - 4}" y="${y(0)}" ${FONT} text-anchor="end">0</text>` +
    `<text x="${left}" y="${height - bottom + 16}" ${FONT}>${xmlEscape(shortTime(t0, t1 - t0))}</text>` +
    `<text x="${width - right}" y="${height - bottom + 16}" ${FONT} text-anchor="end">${xmlEscape(shortTime(t1, t1 - t0))}</text>`;
  b.series.forEach((s, i) => {
    const color = COLORS[(i + 1) % COLORS.length];
    if (s.limit !== null) body += `<line x1="${left}" y1="${y(s.limit).toFixed(1)}" x2="${width - right}" y2="${y(s.limit).toFixed(1)}" stroke="${color}" stroke-dasharray="4 3" stroke-width="1"/>`;
    const path = s.points.map((p, j) => `${j === 0 ? 'M' : 'L'}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(' ');
    if (path) body += `<path d="${path}" fill="none" stroke="${color}" stroke-width="2"><title>${xmlEscape(s.name)}</title></path>`;
    const lx = left + i * 230;
    body += `<rect x="${lx}" y="${height - 14}" width="10" height="10" fill="${color}"/><text x="${lx + 14}" y="${height - 5}" ${FONT}><title>${xmlEscape(s.name)}</title>${xmlEscape(cut(s.name, 30))}</text>`;
  });
  return frame(width, height, title, body);
}
