"""An AI-agent-style actor: a durable workflow that survives `kill -9` mid-answer.

The ``agent`` actor's workflow takes user messages from its ``user`` queue, asks a
(local, deterministic) model stub what to do, calls the ``weather`` tool actor, and
streams the answer token by token to connected clients as ``token`` events. Every step
commits with the agent's state, so after a crash the conversation resumes at the next
token: the tool is not called again and no token is sent twice.

Run the demo in-process (SQLite in ./.pyrivet-agent):

    python examples/agent.py

Or serve it and talk to it from any RivetKit client:

    cd examples && pyrivet serve agent:registry
"""

from __future__ import annotations

import asyncio
from typing import Any

from pyrivet import Client, Queue, Registry, actor
from pyrivet.workflow import Loop, workflow

#: Seconds the model stub takes per token (a real model streams at about this pace).
TOKEN_DELAY = 0.05

# -- the tool: an actor of its own ------------------------------------------------------

weather = actor("weather", state={"lookups": 0})

FORECASTS = {"paris": "light rain, 14°C", "tokyo": "sunny, 22°C", "oslo": "snow, -3°C"}


@weather.action
def forecast(c: Any, city: str) -> str:
    """The tool the agent calls; counts its calls, so a repeated call would show."""
    c.state["lookups"] += 1
    return FORECASTS.get(city.lower(), "no forecast")


@weather.action
def lookups(c: Any) -> int:
    return int(c.state["lookups"])


# -- the model stub: deterministic, no network -------------------------------------------


def plan(text: str) -> dict[str, Any]:
    """What the "model" decides for a user message: a tool call, or none."""
    for city in FORECASTS:
        if city in text.lower():
            return {"tool": "forecast", "city": city}
    return {"tool": None}


def compose(text: str, tool_result: str | None) -> list[str]:
    """The answer's tokens for a message (and the tool's result, if any)."""
    if tool_result is None:
        answer = f"You said: {text}. Ask me about the weather in Paris, Tokyo or Oslo."
    else:
        answer = f"The forecast is {tool_result}. Anything else you would like to know?"
    return answer.split(" ")


# -- the agent ----------------------------------------------------------------------------

agent = actor("agent", state={"messages": [], "draft": []}, queues={"user": Queue(str)})


@agent.run
@workflow
async def converse(ctx: Any) -> None:
    """One loop iteration per user message: remember, plan, call the tool, stream."""

    async def turn(ctx: Any, number: int) -> Any:
        message = await ctx.queue.next("message", names=["user"])
        text = message.body

        def remember(c: Any) -> None:
            c.state["messages"].append({"role": "user", "text": text})
            c.state["draft"] = []

        await ctx.step("remember", remember)
        decision = await ctx.step("plan", lambda c: plan(text))
        result = None
        if decision["tool"] == "forecast":

            async def call_tool(c: Any) -> str:
                tool = c.client().get_or_create("weather", ["global"])
                return str(await tool.forecast(decision["city"]))

            result = await ctx.step("tool", call_tool)
        tokens = compose(text, result)

        async def stream(ctx: Any, index: int) -> Any:
            if index == len(tokens):
                return Loop.break_(index)

            async def emit(c: Any) -> None:
                await asyncio.sleep(TOKEN_DELAY)  # the model thinking
                c.state["draft"].append(tokens[index])
                c.broadcast("token", {"turn": number, "index": index, "token": tokens[index]})

            await ctx.step("token", emit)
            return Loop.continue_(index + 1)

        await ctx.loop("stream", stream, state=0)

        def finish(c: Any) -> None:
            c.state["messages"].append({"role": "agent", "text": " ".join(c.state["draft"])})
            c.state["draft"] = []
            c.broadcast("done", {"turn": number})

        await ctx.step("finish", finish)
        return Loop.continue_(number + 1)

    await ctx.loop("conversation", turn, state=0)


@agent.action
def transcript(c: Any) -> list[dict[str, str]]:
    return list(c.state["messages"])


registry = Registry([agent, weather])


async def main() -> None:
    async with registry.runtime(data_dir=".pyrivet-agent") as runtime:
        client = Client(runtime)
        chat = client.get_or_create("agent", ["demo"])
        async with chat.connect() as conn:
            finished = asyncio.Event()
            conn.on("token", lambda t: print(t["token"], end=" ", flush=True))
            conn.on("done", lambda _: finished.set())
            for text in ("hello!", "what is the weather in Oslo?"):
                print(f"\nyou: {text}\nagent: ", end="", flush=True)
                finished.clear()
                await chat.send("user", text)
                await finished.wait()
        print("\n\ntranscript:", *await chat.transcript(), sep="\n  ")


if __name__ == "__main__":
    asyncio.run(main())
