// Where a page may send a visitor after logging in: a path on this site, never another origin.
// The same rule as the server's (hearing_server/auth/redirects.py), which also refuses such a `next`.

const MAX_NEXT_LENGTH = 2000;
// One "/" then no second "/" or "\" (browsers read "//host" and "/\host" as another origin), no "\" at all,
// no control characters (URL parsers drop tabs and newlines, so "/\t/host" would become "//host").
const SAFE_PATH = /^\/(?![/\\])[^\\\u0000-\u001f\u007f]*$/;

/** `value` if it is an absolute path on this site, otherwise `fallback`. */
export function safeNextPath(value, fallback = '/console/') {
  if (typeof value !== 'string' || !value || value.length > MAX_NEXT_LENGTH) return fallback;
  return SAFE_PATH.test(value) ? value : fallback;
}
