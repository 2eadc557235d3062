/** The machine the numbers come from, printed with the table and stored in the JSON. */
import { cpus, platform, release, totalmem, arch } from 'node:os';

export interface MachineInfo {
  readonly cpuModel: string;
  readonly cores: number;
  readonly memoryBytes: number;
  readonly node: string;
  readonly os: string;
}

export function machineInfo(): MachineInfo {
  const cores = cpus();
  return {
    cpuModel: cores[0]?.model.trim() ?? 'unknown',
    cores: cores.length,
    memoryBytes: totalmem(),
    node: process.version,
    os: `${platform()} ${release()} ${arch()}`,
  };
}

export function describeMachine(machine: MachineInfo): string {
  return `${machine.cpuModel}, ${machine.cores} cores, ${(machine.memoryBytes / 1024 ** 3).toFixed(1)} GiB, Node.js ${machine.node}, ${machine.os}`;
}
