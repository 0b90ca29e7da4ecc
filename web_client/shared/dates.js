// Dates and times as people in the court read them: always in the court's time zone.

import { LOCALES } from './i18n.js';

function locale(language) {
  return LOCALES[language] || 'en-GB';
}

// Chromium's built-in Kazakh data lacks month names ("2026 M11 26"), so Kazakh dates are assembled here.
const KK_MONTHS = ['қаңтар', 'ақпан', 'наурыз', 'сәуір', 'мамыр', 'маусым', 'шілде', 'тамыз', 'қыркүйек',
  'қазан', 'қараша', 'желтоқсан'];

function formatKazakh(moment, timeZone, options) {
  const p = parts(moment, timeZone);
  const day = `${p.year} жылғы ${Number(p.day)} ${KK_MONTHS[Number(p.month) - 1]}`;
  const time = options.second ? `${p.hour}:${p.minute}:${p.second}` : `${p.hour}:${p.minute}`;
  if (options.dateStyle && options.timeStyle) return `${day}, ${time}`;
  if (options.dateStyle) return day;
  return time;
}

function format(iso, language, timeZone, options) {
  const moment = iso instanceof Date ? iso : new Date(iso);
  if (Number.isNaN(moment.getTime())) return '';
  if (language === 'kk') {
    try {
      return formatKazakh(moment, timeZone, options);
    } catch {
      return formatKazakh(moment, 'UTC', options);
    }
  }
  try {
    return new Intl.DateTimeFormat(locale(language), { timeZone, ...options }).format(moment);
  } catch {
    return new Intl.DateTimeFormat(locale(language), options).format(moment); // unknown zone name
  }
}

/** Day, month, year and time, e.g. "1 March 2025, 09:00". */
export function formatDateTime(iso, language, timeZone) {
  return format(iso, language, timeZone, { dateStyle: 'long', timeStyle: 'short' });
}

/** The day only. */
export function formatDate(iso, language, timeZone) {
  return format(iso, language, timeZone, { dateStyle: 'long' });
}

/** The time of day only (with seconds for log entries). */
export function formatTime(iso, language, timeZone, { seconds = false } = {}) {
  return format(iso, language, timeZone, seconds
    ? { hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' }
    : { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
}

function parts(moment, timeZone) {
  const fields = new Intl.DateTimeFormat('en-US', {
    timeZone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit',
    hour: '2-digit', minute: '2-digit', second: '2-digit',
  }).formatToParts(moment);
  const value = Object.fromEntries(fields.map((p) => [p.type, p.value]));
  return value;
}

/** Today's date (YYYY-MM-DD) in `timeZone`. */
export function todayIn(timeZone, now = new Date()) {
  const p = parts(now, timeZone);
  return `${p.year}-${p.month}-${p.day}`;
}

/** The local date and time (YYYY-MM-DD, HH:MM) of `iso` in `timeZone`, for form fields. */
export function localFields(iso, timeZone) {
  const p = parts(new Date(iso), timeZone);
  return { date: `${p.year}-${p.month}-${p.day}`, time: `${p.hour}:${p.minute}` };
}

function offsetMinutes(moment, timeZone) {
  const p = parts(moment, timeZone);
  const asUtc = Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute, +p.second);
  return Math.round((asUtc - moment.getTime()) / 60000);
}

/** The ISO 8601 instant (with offset) of a wall-clock date and time in `timeZone`. */
export function zonedIso(date, time, timeZone) {
  const [year, month, day] = date.split('-').map(Number);
  const [hour, minute] = time.split(':').map(Number);
  const wall = Date.UTC(year, month - 1, day, hour, minute);
  // Two passes settle the offset across a daylight-saving change.
  let offset = offsetMinutes(new Date(wall), timeZone);
  offset = offsetMinutes(new Date(wall - offset * 60000), timeZone);
  const sign = offset >= 0 ? '+' : '-';
  const abs = Math.abs(offset);
  const pad = (n) => String(n).padStart(2, '0');
  return `${date}T${pad(hour)}:${pad(minute)}:00${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
}
