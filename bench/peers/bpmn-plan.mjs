// bpmn-plan.mjs - the peer of docket's whole approval instances: the
// monthly-plan flow as BPMN 2.0 (bench/peers/plan.bpmn) run by bpmn-engine
// in memory, no I/O.
//
// Usage: node bench/peers/bpmn-plan.mjs [INSTANCES] [PHASES]
// Prints one line: whole instances per second. Each instance is started,
// submitted, approved, given PHASES phase-done acts and finished (PHASES =
// 0 by default: start, submit, approve, finish), one instance after the
// other, each a fresh Engine as each docket instance is a fresh start.
// The XML is parsed once (as docket deploys a flow once) and every Engine
// gets the parsed, serialized context: what a bpmn-engine user does to run
// many instances of one process.
import { Engine } from 'bpmn-engine';
import BpmnModdle from 'bpmn-moddle';
import * as Elements from 'bpmn-elements';
import serializer, { TypeResolver } from 'moddle-context-serializer';
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';

const source = readFileSync(new URL('./plan.bpmn', import.meta.url), 'utf8');
const sourceContext = serializer(await new BpmnModdle().fromXML(source), TypeResolver(Elements));

// The services the gateway expressions call: each reads the variables of
// its own instance, set by the person's choice at the last user task.
function services(vars) {
	return {
		canSubmit: () => vars.evidence.plan > 0,
		chose: (name) => vars.choice === name,
		canReturn: () => vars.choice === 'return' && vars.comment.length > 0,
		canPhaseDone: () =>
			vars.choice === 'phase-done' && vars.done_phases < vars.phases,
		canFinish: () => vars.choice === 'finish' && vars.done_phases >= vars.phases,
	};
}

function runInstance(i, phases) {
	return new Promise((resolve, reject) => {
		// what the person does at each wait, in order
		const plan = ['submit', 'approve'];
		for (let p = 0; p < phases; p++) plan.push('phase-done');
		plan.push('finish');
		const vars = { month: '2026-11', phases, done_phases: 0, evidence: { plan: 1 },
			choice: null, comment: '' };
		const engine = new Engine({ name: `plan-${i}`, sourceContext, services: services(vars) });
		const listener = new EventEmitter();
		let step = 0;
		listener.on('wait', (api) => {
			const choice = plan[step++];
			if (choice === undefined) return reject(new Error(`instance ${i}: waits past the end`));
			vars.choice = choice;
			vars.comment = choice === 'return' ? 'needs numbers' : '';
			api.signal({ choice });
		});
		// the <set var="done_phases"> of the docket flow: done when the
		// phase-done flow is taken, after its guard passed
		listener.on('flow.take', (flow) => {
			if (flow.id === 'phase-done') vars.done_phases++;
		});
		listener.on('activity.end', (api) => {
			if (api.id === 'refused') reject(new Error(`instance ${i}: ${vars.choice} refused`));
		});
		engine.once('end', () => {
			if (step !== plan.length) return reject(new Error(`instance ${i}: ended early`));
			resolve();
		});
		engine.once('error', reject);
		engine.execute({ listener }).catch(reject);
	});
}

async function run(n, phases) {
	const t0 = process.hrtime.bigint();
	for (let i = 0; i < n; i++) await runInstance(i, phases);
	return n / (Number(process.hrtime.bigint() - t0) / 1e9);
}

const n = Number(process.argv[2] || 2000);
const phases = Number(process.argv[3] || 0);
await run(Math.min(n, 200), phases); // warm the JIT
console.log((await run(n, phases)).toFixed(0));
