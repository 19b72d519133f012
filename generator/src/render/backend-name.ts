// Moved to the generator/agent contract (agent/src/contract.ts); kept only until every importer
// uses agent/src/index.ts.
export { backendName } from '../../../agent/src/index.js';
