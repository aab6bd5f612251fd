"""The workspace's eval target (`workspace.task`), registered with core.evals: an AI task on the case's text with the
task's own prompt file (or a candidate prompt), through the gateway like the product does."""

from __future__ import annotations

from pathlib import Path

from core.evals import EvalTargetError, Target, TargetOutput, complete, llm_overrides, register_target, resolve_prompt
from core.evals import tier_model_label


class WorkspaceTask(Target):
    """A workspace AI task (action items, summarize, ...) on the case's text, with the task's own prompt file."""

    def prepare(self, options):
        from core.workspace import get_task

        task_id = options.settings.get("task")
        if task_id:
            get_task(task_id)
        llm_overrides(options, "capable")
        if options.prompt_version and task_id:
            resolve_prompt(f"workspace/{task_id}", options.prompt_version)

    def model_label(self, options):
        return tier_model_label(options, "capable")

    def prompt_label(self, options):
        task_id = options.settings.get("task")
        if not options.prompt_version or not task_id:
            return super().prompt_label(options)
        prompt = resolve_prompt(f"workspace/{task_id}", options.prompt_version)
        if Path(options.prompt_version).is_file():
            return f"{prompt.version} ({Path(options.prompt_version).name})"[:64]
        return prompt.version

    def run(self, case, options):
        from core.llm import LLMRequest
        from core.workspace import WorkspaceError, get_task, prepare
        from core.workspace._run import clean_action_items, tidy_output

        task_id = case.fields.get("task") or options.settings.get("task")
        try:
            prepared = prepare(task_id, case.input, case.fields.get("page"), case.fields.get("params"))
        except WorkspaceError as exc:
            raise EvalTargetError(str(exc)) from None
        task = get_task(task_id)
        prompt = resolve_prompt(task.prompt_id, options.prompt_version) if options.prompt_version else task.prompt
        base = prepared.request(user="eval")
        request = LLMRequest.from_prompt(
            prompt, prepared.values, feature="eval", task=options.suite[:64], user="eval",
            json_schema=task.json_schema, max_tokens=min(base.max_tokens, prompt.max_tokens),
            temperature=0.0, **llm_overrides(options, prompt.tier),
        )
        completion, latency, cost = complete(request)
        if task.json_schema is not None:
            items = clean_action_items(completion.json, prepared.values["text"])
            output = {"json": completion.json, "json_schema": task.json_schema, "items": items}
            text = "\n".join(f"{i['task']} | {i.get('assignee') or ''} | {i.get('due') or ''}" for i in items)
        else:
            text = tidy_output(completion.text)
            output = {"text": text}
        output |= {"model": f"{completion.provider}/{completion.model}", "prompt_version": prompt.version}
        return TargetOutput(output=output, text=text, latency_ms=latency, cost_usd=cost,
                            tokens_in=completion.tokens_in, tokens_out=completion.tokens_out)


register_target("workspace.task", WorkspaceTask())
