// What every console page does first: language, court settings, the staff session, the top bar.

import { I18n, mountLanguageSwitch, preferredLanguage } from '../shared/i18n.js';
import { Api, clientSettings } from '../shared/api.js';

const $ = (id) => document.getElementById(id);

/** Start a staff page: `run(i18n, api, settings)` once the user is known (else go to the login page). */
export async function startConsole(run) {
  const i18n = new I18n();
  const api = new Api();
  const [settings] = await Promise.all([
    clientSettings().catch(() => ({ timezone: 'UTC', court_name: '' })),
    i18n.setLanguage(preferredLanguage(), { remember: false }),
  ]);
  const session = await api.session().catch(() => null);
  if (!session || session.must_change_password) {  // the login page asks for the new password
    const next = window.location.pathname + window.location.search;
    window.location.replace(`/login?next=${encodeURIComponent(next)}`);
    return;
  }
  mountLanguageSwitch($('lang-switch'), i18n);
  const name = $('user-name');
  if (name) name.textContent = session.user.display_name || session.user.username;
  const logout = $('logout');
  if (logout) {
    logout.addEventListener('click', async () => {
      await api.logout().catch(() => {});
      window.location.assign('/login');
    });
  }
  document.body.dataset.ready = 'true';
  await run(i18n, api, settings);
}
