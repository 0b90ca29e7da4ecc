// The archive browser: search sealed hearings, then open one to play it, read its log and check its seal.
// One page for both screens: /archive/ searches, /archive/hearing/{id} shows a hearing.

import { showScreen } from '../shared/dom.js';
import { startConsole } from '../console/session.js';
import { SearchScreen } from './search.js';
import { HearingScreen } from './hearing.js';

const READERS = new Set(['archivist', 'admin']);
const HEARING_PATH = /^\/archive\/hearing\/([0-9a-fA-F-]{36})$/;

startConsole(async (i18n, api, settings) => {
  if (!READERS.has(api.user.role)) {
    document.body.dataset.archive = 'no-access';
    showScreen('no-access');
    return;
  }
  const match = window.location.pathname.match(HEARING_PATH);
  if (match) {
    document.body.dataset.archive = 'hearing';
    await new HearingScreen(i18n, api, settings, match[1]).start();
  } else {
    document.body.dataset.archive = 'search';
    await new SearchScreen(i18n, api, settings).start();
  }
});
