// Entry of the embedded store's worker thread. Worker threads do not inherit the tsx loader the
// CLI registered (nor `--import tsx`), so the thread registers it before loading the TypeScript.
import { register } from 'tsx/esm/api';

register();
await import('./pglite-thread.ts');
