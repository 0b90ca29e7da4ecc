// The archive browser. A placeholder until the archive API exists: search by case number, date,
// court and party; a hearing's playback copy, original tracks, log timeline and seal status.

import { startConsole } from '../console/session.js';

startConsole(() => {
  document.body.dataset.archive = 'placeholder';
});
