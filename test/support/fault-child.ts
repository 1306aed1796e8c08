// The process the fault tests kill -9: it opens a driver home, says "ready", then runs one operation
// (or a loop of them) until it is killed. Usage: node fault-child.js OP HOME ARGS...
//   create HOME PREFIX N      create PREFIX-0 .. PREFIX-(N-1) as a chain (skipping those that exist)
//   apply HOME ID PARENT      applyDiff(ID, PARENT or "-" for none) of the tar on stdin
//   remove HOME ID            remove(ID)
//   get HOME ID...            get/put the ids round-robin, forever
import { Overlay2Driver } from '../../src/driver.js';

const [op, home, ...args] = process.argv.slice(2);
const driver = await Overlay2Driver.init(home!);
process.stdout.write('ready\n');

switch (op) {
  case 'create': {
    const [prefix, n] = [args[0]!, Number(args[1])];
    let parent = '';
    for (let i = 0; i < n; i++) {
      const id = `${prefix}-${i}`;
      if (!(await driver.exists(id))) await driver.create(id, parent);
      parent = id;
    }
    break;
  }
  case 'apply':
    await driver.applyDiff(args[0]!, args[1] === '-' ? null : args[1]!, process.stdin);
    break;
  case 'remove':
    await driver.remove(args[0]!);
    break;
  case 'get':
    for (let i = 0; ; i++) {
      const id = args[i % args.length]!;
      await driver.get(id);
      await driver.put(id);
    }
  default:
    throw new Error(`fault-child: unknown op ${op}`);
}
process.stdout.write('done\n');
