export {
  StoreClosedError,
  StoreLimitError,
  StoreOutcomeUnknownError,
  StoreUnavailableError,
} from './errors.js';
export { FileStore, type FileStoreOptions } from './file-store.js';
export * from './types.js';
