// The embedded services' single store: one better-sqlite3 database in WAL mode under the state
// directory (`<stateDir>/taskcluster.sqlite`). Every service creates its own tables in its
// constructor (`CREATE TABLE IF NOT EXISTS`), so a restart keeps everything.
import BetterSqlite3 from 'better-sqlite3';
import fs from 'node:fs';
import path from 'node:path';
import { ArchiveError, errorMessage } from '../util/errors.js';

export type Database = BetterSqlite3.Database;

const DATABASE_FILE = 'taskcluster.sqlite';

/** Open (creating if needed) the embedded database of a state directory. */
export function openDatabase(stateDir: string): Database {
  try {
    fs.mkdirSync(stateDir, { recursive: true });
  } catch (e) {
    throw new ArchiveError(
      'invalid-config',
      `cannot create state directory ${stateDir}: ${errorMessage(e)}`,
      { stateDir },
      { cause: e },
    );
  }
  const file = path.join(stateDir, DATABASE_FILE);
  let db: Database;
  try {
    db = new BetterSqlite3(file);
  } catch (e) {
    throw new ArchiveError(
      'invalid-config',
      `cannot open the embedded database ${file}: ${errorMessage(e)}`,
      { file },
      { cause: e },
    );
  }
  db.pragma('journal_mode = WAL');
  db.pragma('busy_timeout = 5000');
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  db.exec(`
    CREATE TABLE IF NOT EXISTS settings (
      key TEXT PRIMARY KEY,
      value TEXT NOT NULL
    );
  `);
  return db;
}

/** A persisted setting of the embedded deployment (root token, chosen ports…). */
export function getSetting(db: Database, key: string): string | undefined {
  const row = db.prepare('SELECT value FROM settings WHERE key = ?').get(key) as
    { value: string } | undefined;
  return row?.value;
}

export function setSetting(db: Database, key: string, value: string): void {
  db.prepare(
    'INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value',
  ).run(key, value);
}
