// Placeholder while the command is being built in this session.
export async function run(_args: string[]): Promise<number> {
  process.stderr.write('warren start: not built yet\n');
  return 1;
}
