// xstate-plan.mjs - the peer of docket's engine core: the monthly-plan
// approval machine (bench/monthly-plan.xml) written for xstate v5 and run
// in memory, no I/O.
//
// Usage: node bench/peers/xstate-plan.mjs [INSTANCES] [ORG] [--bare]
// Prints one line: transitions per second over INSTANCES instances, each
// created and carried from draft to done along the same path as
// bench/engine_core.c: upload the plan, submit, return, upload, submit,
// approve, 3x (upload a phase report, phase-done), finish (8 transitions
// with phases = 3; only transitions are counted). Creating the actor is
// inside the timed loop, as starting an instance is on docket's side.
//
// By default the machine does what docket's engine does on every command,
// each in xstate's own way:
//   - uploads are events: the kind, the file type and size, the freeze of
//     the plan once in-progress was entered and the uploader (initiator or
//     assignee) are checked, and the upload is recorded against the state
//     visit it was made in (requires = "uploaded during this visit");
//   - each transition checks that the actor is the state's assignee;
//   - entering a state stamps its entry, counts its visits and assigns it
//     (the initiator, or dk:head-of the initiator through the org read
//     from ORG, examples/org.xml by default): the task;
//   - review arms its deadline timers (escalation after P3D, a reminder
//     after P1D) with xstate's delayed transitions on a simulated clock,
//     disarmed when it is left;
//   - audit events (instance.started, task.assigned, transition.fired with
//     the variable changes, evidence.attached, instance.completed) are
//     emitted and collected per instance.
// --bare runs the bare machine of the earlier runs instead: guards over
// evidence counts preset in the context, no uploads, assignees, timers or
// audit events.
import { setup, assign, emit, createActor, SimulatedClock } from 'xstate';
import { readFileSync } from 'node:fs';

const PATH = [
	['upload', 'plan'],
	['submit'],
	['return'],
	['upload', 'plan'],
	['submit'],
	['approve'],
	['upload', 'phase-report'],
	['phase-done'],
	['upload', 'phase-report'],
	['phase-done'],
	['upload', 'phase-report'],
	['phase-done'],
	['finish'],
];
const TRANSITIONS = PATH.filter((s) => s[0] !== 'upload').length;
const ACTOR = { submit: 'li', return: 'wei', approve: 'wei', 'phase-done': 'li', finish: 'li' };
const NOW = Date.parse('2026-11-02T09:00:00+08:00');
const DAY = 24 * 3600 * 1000;
const SHA = '9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08';

// ---- the org: departments' heads and users' departments -------------------

function loadOrg(path) {
	const text = readFileSync(path, 'utf8').replace(/<!--[\s\S]*?-->/g, '');
	const attrs = (tag) =>
		Object.fromEntries([...tag.matchAll(/([\w-]+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
	const depts = new Map();
	const users = new Map();
	for (const m of text.matchAll(/<dept\s[^>]*>/g)) {
		const a = attrs(m[0]);
		depts.set(a.id, a);
	}
	for (const m of text.matchAll(/<user\s[^>]*>/g)) {
		const a = attrs(m[0]);
		users.set(a.id, a);
	}
	return { depts, users };
}

// ---- the machine doing docket's work -----------------------------------------

function planMachine(org) {
	const headOf = (id) => {
		const u = org.users.get(id);
		const d = u && u.dept ? org.depts.get(u.dept) : undefined;
		return d && d.head ? d.head : '';
	};
	const KINDS = {
		plan: { types: ['pdf', 'docx', 'xlsx'], maxSize: 20 * 1024 * 1024 },
		'phase-report': { types: [], maxSize: 0 },
	};
	const uploadedThisVisit = (context, kind) => {
		const visit = context.visits[context.state];
		return context.evidence.some(
			(e) => e.kind === kind && e.state === context.state && e.visit === visit.visits,
		);
	};
	const isAssignee = ({ context, event }) => event.actor === context.assignee;
	const fired = (from, to) => ({
		type: 'fired',
		params: { from, to },
	});
	return setup({
		guards: {
			canUpload: ({ context, event }) => {
				const k = KINDS[event.kind];
				if (!k) return false;
				if (event.kind === 'plan' && context.visits['in-progress']) return false; // frozen
				if (k.types.length) {
					const dot = event.name.lastIndexOf('.');
					const ext = dot < 0 ? '' : event.name.slice(dot + 1).toLowerCase();
					if (!k.types.includes(ext)) return false;
				}
				if (k.maxSize && event.size > k.maxSize) return false;
				return event.actor === context.initiator || event.actor === context.assignee;
			},
			canSubmit: (a) => isAssignee(a) && uploadedThisVisit(a.context, 'plan'),
			canReturn: (a) =>
				isAssignee(a) && typeof a.event.comment === 'string' && a.event.comment.length > 0,
			canApprove: isAssignee,
			canPhaseDone: (a) =>
				isAssignee(a) &&
				uploadedThisVisit(a.context, 'phase-report') &&
				a.context.done_phases < a.context.phases,
			canFinish: (a) => isAssignee(a) && a.context.done_phases >= a.context.phases,
		},
		actions: {
			enter: assign(({ context }, { state, assignee }) => {
				const was = context.visits[state];
				return {
					state,
					visits: {
						...context.visits,
						[state]: { entered_at: context.now, visits: was ? was.visits + 1 : 1 },
					},
					assignee:
						assignee === 'initiator'
							? context.initiator
							: assignee === 'head'
								? headOf(context.initiator)
								: '',
				};
			}),
			assigned: emit(({ context }) => ({
				type: 'task.assigned',
				at: context.now,
				user: context.assignee,
				to: context.state,
				data: { assignee: context.assignee, state: context.state },
			})),
			fired: emit(({ context, event }, { from, to }) => ({
				type: 'transition.fired',
				at: context.now,
				actor: event.actor,
				from,
				to,
				transition: event.type,
				comment: event.comment,
				data: {},
			})),
			countPhase: assign({ done_phases: ({ context }) => context.done_phases + 1 }),
			firedPhase: emit(({ context, event }) => ({
				type: 'transition.fired',
				at: context.now,
				actor: event.actor,
				from: 'in-progress',
				to: 'in-progress',
				transition: event.type,
				data: {
					vars: { done_phases: { from: context.done_phases - 1, to: context.done_phases } },
				},
			})),
			recordUpload: assign({
				evidence: ({ context, event }) => [
					...context.evidence,
					{
						kind: event.kind,
						state: context.state,
						visit: context.visits[context.state].visits,
						state_entered_at: context.visits[context.state].entered_at,
						at: context.now,
						by: event.actor,
						name: event.name,
						sha256: event.sha256,
						size: event.size,
					},
				],
			}),
			uploaded: emit(({ context, event }) => ({
				type: 'evidence.attached',
				at: context.now,
				actor: event.actor,
				to: context.state,
				data: {
					kind: event.kind,
					state: context.state,
					visit: context.visits[context.state].visits,
					size: event.size,
					name: event.name,
					sha256: event.sha256,
				},
			})),
			started: emit(({ context }) => ({
				type: 'instance.started',
				at: context.now,
				actor: context.initiator,
				to: 'draft',
				data: { flow: 'bench-plan', version: 1, vars: { month: context.month, phases: context.phases } },
			})),
			completed: emit(({ context }) => ({
				type: 'instance.completed',
				at: context.now,
				to: 'done',
			})),
			escalate: assign({ escalated: ({ context }) => [...context.escalated, 'zhao'] }),
			remind: emit(({ context }) => ({ type: 'task.reminder', at: context.now })),
		},
	}).createMachine({
		id: 'monthly-plan',
		initial: 'draft',
		context: ({ input }) => ({
			instance: input.instance,
			initiator: input.initiator,
			now: input.now,
			month: input.month,
			phases: input.phases,
			done_phases: 0,
			state: '',
			assignee: '',
			visits: {},
			evidence: [],
			escalated: [],
		}),
		entry: 'started',
		on: { upload: { guard: 'canUpload', actions: ['recordUpload', 'uploaded'] } },
		states: {
			draft: {
				entry: [{ type: 'enter', params: { state: 'draft', assignee: 'initiator' } }, 'assigned'],
				on: { submit: { target: 'review', guard: 'canSubmit', actions: fired('draft', 'review') } },
			},
			review: {
				entry: [{ type: 'enter', params: { state: 'review', assignee: 'head' } }, 'assigned'],
				after: { [3 * DAY]: { actions: 'escalate' }, [DAY]: { actions: 'remind' } },
				on: {
					approve: {
						target: 'in-progress',
						guard: 'canApprove',
						actions: fired('review', 'in-progress'),
					},
					return: { target: 'draft', guard: 'canReturn', actions: fired('review', 'draft') },
				},
			},
			'in-progress': {
				entry: [
					{ type: 'enter', params: { state: 'in-progress', assignee: 'initiator' } },
					'assigned',
				],
				on: {
					'phase-done': {
						target: 'in-progress',
						reenter: true,
						guard: 'canPhaseDone',
						actions: ['countPhase', 'firedPhase'],
					},
					finish: { target: 'done', guard: 'canFinish', actions: fired('in-progress', 'done') },
				},
			},
			done: {
				type: 'final',
				entry: [{ type: 'enter', params: { state: 'done', assignee: 'none' } }, 'completed'],
			},
		},
	});
}

function runEquivalent(machine, n) {
	let transitions = 0;
	const t0 = process.hrtime.bigint();
	for (let i = 0; i < n; i++) {
		const events = [];
		const clock = new SimulatedClock();
		const actor = createActor(machine, {
			clock,
			input: { instance: `bench-${i}`, initiator: 'li', now: NOW, month: '2026-11', phases: 3 },
		});
		actor.on('*', (e) => events.push(e));
		actor.start();
		for (const [type, kind] of PATH) {
			const before = actor.getSnapshot();
			if (type === 'upload')
				actor.send({ type, kind, actor: 'li', name: 'report.pdf', sha256: SHA, size: 4096 });
			else if (type === 'return')
				actor.send({ type, actor: ACTOR[type], comment: 'the numbers for week 2 are missing' });
			else actor.send({ type, actor: ACTOR[type] });
			if (actor.getSnapshot() === before) throw new Error(`instance ${i}: ${type} did not happen`);
			if (type !== 'upload') transitions++;
		}
		if (actor.getSnapshot().status !== 'done') throw new Error(`instance ${i} did not finish`);
		// started, 5 uploads, 8 fired, 8 assigned (phase-done enters a new
		// visit), completed: what docket's engine gives for the same path
		if (events.length !== 23) throw new Error(`instance ${i}: ${events.length} events, not 23`);
		actor.stop();
	}
	const secs = Number(process.hrtime.bigint() - t0) / 1e9;
	return transitions / secs;
}

// ---- the bare machine of the earlier runs ------------------------------------

const BARE_PATH = PATH.filter((s) => s[0] !== 'upload').map((s) => s[0]);

const bareMachine = setup({
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

function runBare(n) {
	let transitions = 0;
	const t0 = process.hrtime.bigint();
	for (let i = 0; i < n; i++) {
		const actor = createActor(bareMachine, { input: { month: '2026-11', phases: 3 } });
		actor.start();
		for (const type of BARE_PATH) {
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

const args = process.argv.slice(2);
const bare = args.includes('--bare');
const rest = args.filter((a) => a !== '--bare');
const n = Number(rest[0] || 20000);
let run;
if (bare) {
	run = runBare;
} else {
	const machine = planMachine(loadOrg(rest[1] || 'examples/org.xml'));
	run = (k) => runEquivalent(machine, k);
}
if (TRANSITIONS !== BARE_PATH.length) throw new Error('paths differ');
run(Math.min(n, 2000)); // warm the JIT, as the C side is compiled ahead
console.log(run(n).toFixed(0));
