// Small file-system and process checks shared by the stack's components and scripts.
import { constants } from 'node:fs';
import { access } from 'node:fs/promises';

export async function pathExists(path: string, mode: number = constants.F_OK): Promise<boolean> {
  try {
    await access(path, mode);
    return true;
  } catch {
    return false;
  }
}

/** Whether a process with this pid exists (it may belong to another user). */
export function isPidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
