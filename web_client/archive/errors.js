// How the archive pages tell the archivist that a request failed.

/** The catalog key for an API failure (`api_error.<code>`, else the generic message). */
export function failureKey(i18n, error) {
  const key = `api_error.${error.code}`;
  return i18n.has(key) ? key : 'api_error.generic';
}

/** Show `error` in the page's error banner for a while. */
export function showBanner(i18n, error) {
  const banner = document.getElementById('banner-error');
  i18n.render(banner, failureKey(i18n, error));
  banner.hidden = false;
  clearTimeout(showBanner.timer);
  showBanner.timer = setTimeout(() => { banner.hidden = true; }, 8000);
}
