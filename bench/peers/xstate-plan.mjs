// xstate-plan.mjs - the peer of docket's engine core: the monthly-plan
// approval machine (bench/monthly-plan.xml) written for xstate v5 and run
// in memory, no I/O.
//
// Usage: node bench/peers/xstate-plan.mjs [INSTANCES]
// Prints one line: transitions per second over INSTANCES instances, each
// created and carried from draft to done along the same path as
// bench/engine_core.c: submit, return, submit, approve, phase-done x3,
// finish (8 transitions with phases = 3). Creating the actor is inside the
// timed loop, as starting an instance is on docket's side.
import { setup, assign, createActor } from 'xstate';

const PATH = ['submit', 'return', 'submit', 'approve', 'phase-done', 'phase-done', 'phase-done',
	'finish'];

// Guards and variables as in the docket flow: submit needs the plan
// uploaded; phase-done needs a phase report and done_phases < phases, and
// increments done_phases; finish needs done_phases >= phases; return needs
// a comment. Evidence is counted in the context, uploaded before the run.
const machine = setup({
	guards: {
		canSubmit: ({ context }) => context.evidence.plan > 0,
		hasComment: ({ event }) => typeof event.comment === 'string' && event.comment.length > 0,
		canPhaseDone: ({ context }) =>
			context.evidence['phase-report'] > context.done_phases &&
			context.done_phases < context.phases,
		canFinish: ({ context }) => context.done_phases >= context.phases,
	},
	actions: {
		countPhase: assign({ done_phases: ({ context }) => context.done_phases + 1 }),
	},
}).createMachine({
	id: 'monthly-plan',
	initial: 'draft',
	context: ({ input }) => ({
		month: input.month,
		phases: input.phases,
		done_phases: 0,
		evidence: { plan: 1, 'phase-report': input.phases },
	}),
	states: {
		draft: { on: { submit: { target: 'review', guard: 'canSubmit' } } },
		review: {
			on: {
				approve: { target: 'in-progress' },
				return: { target: 'draft', guard: 'hasComment' },
			},
		},
		'in-progress': {
			on: {
				'phase-done': { target: 'in-progress', guard: 'canPhaseDone', actions: 'countPhase' },
				finish: { target: 'done', guard: 'canFinish' },
			},
		},
		done: { type: 'final' },
	},
});

function run(n) {
	let transitions = 0;
	const t0 = process.hrtime.bigint();
	for (let i = 0; i < n; i++) {
		const actor = createActor(machine, { input: { month: '2026-11', phases: 3 } });
		actor.start();
		for (const type of PATH) {
			const before = actor.getSnapshot();
			actor.send(type === 'return' ? { type, comment: 'needs numbers' } : { type });
			const after = actor.getSnapshot();
			if (after === before) throw new Error(`instance ${i}: ${type} did not fire`);
			transitions++;
		}
		if (actor.getSnapshot().status !== 'done') throw new Error(`instance ${i} did not finish`);
		actor.stop();
	}
	const secs = Number(process.hrtime.bigint() - t0) / 1e9;
	return transitions / secs;
}

const n = Number(process.argv[2] || 20000);
run(Math.min(n, 2000)); // warm the JIT, as the C side is compiled ahead
console.log(run(n).toFixed(0));
