/** One connection from the terminal client to a server, whatever the transport. */
export interface Link {
  /** Open (or reopen after a drop); resolves once connected. Rejects on failure. */
  connect(): Promise<void>;
  /** A line typed by the user. */
  input(line: string): void;
  /** Lines to show arrive here. */
  onLine: (line: string) => void;
  /** Called when the connection drops (not after close()). */
  onDrop: (reason: string) => void;
  /** Called when the user asked to quit. */
  onQuit: () => void;
  close(): void;
}
