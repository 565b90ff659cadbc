export { FileStore, type FileStoreOptions, StoreClosedError } from './file-store.js';
export * from './types.js';
