"""The OpenAI Agents SDK (`openai-agents`), unchanged and used as its docs show, against the
server's Responses API: its default client pointed at the server
(`set_default_openai_client(AsyncOpenAI(base_url=...))`), tracing off, the Responses API (the
SDK's default model API). The model is the stand-in (see conftest.py), scripted per test; what
reached it (`llm.requests()`) shows the SDK's items, which it passes back as input on every
turn (output messages with ids, statuses and annotations, function calls with ids and
statuses, their outputs), were understood. Covered: the hello-world agent, a function tool, a
handoff, a streamed run, output_type, agent as tool, a session, and the server keeping the
context (previous_response_id, auto_previous_response_id, conversation_id of a thread)."""

from __future__ import annotations

import asyncio
import json

import pytest
from pydantic import BaseModel
from agents import (
    Agent,
    ItemHelpers,
    Runner,
    SQLiteSession,
    function_tool,
    set_default_openai_api,
    set_default_openai_client,
    set_tracing_disabled,
)
from openai import AsyncOpenAI
from openai.types.responses import ResponseTextDeltaEvent

from run_helpers import call

pytestmark = pytest.mark.backends("local", "azure", "functions", "proxy")


@pytest.fixture
def agents_client(server, client):
    """The Agents SDK's default client: an AsyncOpenAI on this backend's server (tenant A),
    for this test only (its connections belong to the test's event loop)."""
    async_client = AsyncOpenAI(
        base_url=server.base_url, api_key=client.api_key, max_retries=0, timeout=30.0
    )
    set_default_openai_client(async_client, use_for_tracing=False)
    set_default_openai_api("responses")
    set_tracing_disabled(True)
    yield async_client


def chat_messages(request: dict) -> list[tuple[str, str | None]]:
    """A chat request's messages as (role, text) pairs; each tool call as a pair of its own,
    'call:<name>(<args>)', after the text its message has."""
    out = []
    for m in request["messages"]:
        if not m.get("tool_calls") or m.get("content"):
            out.append((m["role"], m["content"]))
        for c in m.get("tool_calls") or []:
            out.append((m["role"], f"call:{c['function']['name']}({c['function']['arguments']})"))
    return out


def test_hello_world_agent_and_a_second_turn_from_its_input_list(agents_client, llm):
    llm.script(
        {"text": "Code calls itself,\nloops within loops unfolding,\nbase case ends the dream."},
        {"text": "It was about recursion."},
    )
    agent = Agent(name="Assistant", instructions="You are a helpful assistant", model=llm.model)

    result = Runner.run_sync(agent, "Write a haiku about recursion in programming.")
    assert result.final_output.startswith("Code calls itself,")
    assert result.last_agent is agent
    assert result.last_response_id and result.last_response_id.startswith("resp_")
    assert chat_messages(llm.requests()[0]) == [
        ("system", "You are a helpful assistant"),
        ("user", "Write a haiku about recursion in programming."),
    ]

    # The next turn, as the docs show it: the previous run's items (the output message, with
    # its id, status and annotations) and a new user message.
    follow_up = result.to_input_list() + [{"role": "user", "content": "What was it about?"}]
    assert follow_up[1]["type"] == "message" and follow_up[1]["id"].startswith("msg_")
    second = Runner.run_sync(agent, follow_up)
    assert second.final_output == "It was about recursion."
    assert chat_messages(llm.requests()[1]) == [
        ("system", "You are a helpful assistant"),
        ("user", "Write a haiku about recursion in programming."),
        ("assistant", result.final_output),
        ("user", "What was it about?"),
    ]


def test_function_tool_runs_and_its_result_reaches_the_model(agents_client, llm):
    ran: list[str] = []

    @function_tool
    def get_weather(city: str) -> str:
        """Current weather of a city.

        Args:
            city: The city's name.
        """
        ran.append(city)
        return f"The weather in {city} is sunny."

    llm.script(
        {"tool_calls": [call("get_weather", {"city": "Tokyo"})]},
        {"text": "It is sunny in Tokyo."},
    )
    agent = Agent(
        name="Hello world",
        instructions="You are a helpful agent.",
        model=llm.model,
        tools=[get_weather],
    )

    async def main():
        return await Runner.run(agent, input="What's the weather in Tokyo?")

    result = asyncio.run(main())
    assert ran == ["Tokyo"]
    assert result.final_output == "It is sunny in Tokyo."
    kinds = [item.type for item in result.new_items]
    assert kinds == ["tool_call_item", "tool_call_output_item", "message_output_item"]

    first, second = llm.requests()
    tools = first["tools"]
    assert [t["function"]["name"] for t in tools] == ["get_weather"]
    assert tools[0]["function"]["parameters"]["properties"]["city"]["type"] == "string"
    # The second turn's input is the first's items passed back: the function call (with its
    # fc_ id and status) and its output, as the assistant's tool call and a tool message.
    assert chat_messages(second) == [
        ("system", "You are a helpful agent."),
        ("user", "What's the weather in Tokyo?"),
        ("assistant", 'call:get_weather({"city": "Tokyo"})'),
        ("tool", "The weather in Tokyo is sunny."),
    ]
    call_id = second["messages"][2]["tool_calls"][0]["id"]
    assert second["messages"][3]["tool_call_id"] == call_id


def test_handoff_to_a_second_agent(agents_client, llm):
    spanish_agent = Agent(
        name="Spanish agent",
        instructions="You only speak Spanish.",
        model=llm.model,
    )
    english_agent = Agent(
        name="English agent",
        instructions="You only speak English.",
        model=llm.model,
    )
    triage_agent = Agent(
        name="Triage agent",
        instructions="Handoff to the appropriate agent based on the language of the request.",
        handoffs=[spanish_agent, english_agent],
        model=llm.model,
    )
    llm.script(
        {"tool_calls": [call("transfer_to_spanish_agent", {})]},
        {"text": "¡Hola! Estoy bien, gracias."},
    )

    async def main():
        return await Runner.run(triage_agent, input="Hola, ¿cómo estás?")

    result = asyncio.run(main())
    assert result.last_agent is spanish_agent
    assert result.final_output == "¡Hola! Estoy bien, gracias."
    kinds = [item.type for item in result.new_items]
    assert kinds == ["handoff_call_item", "handoff_output_item", "message_output_item"]

    first, second = llm.requests()
    assert first["messages"][0] == {
        "role": "system",
        "content": "Handoff to the appropriate agent based on the language of the request.",
    }
    assert sorted(t["function"]["name"] for t in first["tools"]) == [
        "transfer_to_english_agent",
        "transfer_to_spanish_agent",
    ]
    # The Spanish agent's turn: its own instructions, the triage turn's handoff call and its
    # output passed back.
    sent = chat_messages(second)
    assert sent[0] == ("system", "You only speak Spanish.")
    assert sent[1] == ("user", "Hola, ¿cómo estás?")
    assert sent[2] == ("assistant", "call:transfer_to_spanish_agent({})")
    assert sent[3][0] == "tool"
    assert json.loads(sent[3][1]) == {"assistant": "Spanish agent"}
    assert len(sent) == 4


def test_streamed_run_with_a_tool(agents_client, llm):
    ran: list[str] = []

    @function_tool
    def get_time(city: str) -> str:
        """Local time of a city."""
        ran.append(city)
        return "10:30"

    llm.script(
        {"tool_calls": [call("get_time", {"city": "Oslo"})]},
        {"text": "It is 10:30 in Oslo.", "chunk_delay_ms": 5},
    )
    agent = Agent(
        name="Joker",
        instructions="You answer questions about time.",
        model=llm.model,
        tools=[get_time],
    )

    async def main():
        result = Runner.run_streamed(agent, input="What time is it in Oslo?")
        deltas: list[str] = []
        raw_types: list[str] = []
        items: list[tuple[str, str]] = []
        async for event in result.stream_events():
            if event.type == "raw_response_event":
                raw_types.append(event.data.type)
                if isinstance(event.data, ResponseTextDeltaEvent):
                    deltas.append(event.data.delta)
            elif event.type == "run_item_stream_event":
                text = ""
                if event.item.type == "message_output_item":
                    text = ItemHelpers.text_message_output(event.item)
                items.append((event.name, text))
        return result, deltas, raw_types, items

    result, deltas, raw_types, items = asyncio.run(main())
    assert ran == ["Oslo"]
    assert result.is_complete
    assert result.final_output == "It is 10:30 in Oslo."
    assert "".join(deltas) == "It is 10:30 in Oslo."
    assert len(deltas) > 1
    assert [name for name, _ in items] == ["tool_called", "tool_output", "message_output_created"]
    assert items[-1][1] == "It is 10:30 in Oslo."
    # Each turn was one streamed response, created to completed.
    assert raw_types.count("response.created") == 2
    assert raw_types.count("response.completed") == 2
    assert "response.function_call_arguments.delta" in raw_types
    second = llm.requests()[1]
    assert chat_messages(second)[-1] == ("tool", "10:30")


def test_previous_response_id_keeps_the_context_on_the_server(agents_client, llm):
    llm.script({"text": "Noted, Ada."}, {"text": "Your name is Ada."})
    agent = Agent(name="Assistant", instructions="Be brief.", model=llm.model)

    async def main():
        first = await Runner.run(agent, "My name is Ada.")
        second = await Runner.run(
            agent, "What is my name?", previous_response_id=first.last_response_id
        )
        return first, second

    first, second = asyncio.run(main())
    assert second.final_output == "Your name is Ada."
    assert chat_messages(llm.requests()[1]) == [
        ("system", "Be brief."),
        ("user", "My name is Ada."),
        ("assistant", "Noted, Ada."),
        ("user", "What is my name?"),
    ]


def test_output_type_is_a_json_schema_the_model_gets(agents_client, llm):
    class Weather(BaseModel):
        city: str
        degrees: int

    llm.script({"text": json.dumps({"city": "Paris", "degrees": 21})})
    agent = Agent(name="Forecaster", instructions="Answer in JSON.", model=llm.model,
                  output_type=Weather)
    result = Runner.run_sync(agent, "Weather in Paris?")
    assert result.final_output == Weather(city="Paris", degrees=21)
    sent = llm.requests()[0]["response_format"]
    assert sent["type"] == "json_schema"
    assert sent["json_schema"]["name"] == "final_output"
    assert sent["json_schema"]["strict"] is True
    assert sent["json_schema"]["schema"]["required"] == ["city", "degrees"]


def test_conversation_id_of_a_thread_sends_only_new_items(agents_client, client, llm):
    """`conversation_id=`: the SDK sends each turn's new items only (the tool's output alone
    on the second turn); the server keeps the rest in the conversation, here an Assistants
    thread."""
    ran: list[str] = []

    @function_tool
    def get_weather(city: str) -> str:
        """Current weather of a city."""
        ran.append(city)
        return f"The weather in {city} is sunny."

    thread = client.beta.threads.create()
    llm.script(
        {"tool_calls": [call("get_weather", {"city": "Rome"})]},
        {"text": "Sunny in Rome."},
        {"text": "You asked about Rome."},
    )
    agent = Agent(name="Weather", instructions="Be brief.", model=llm.model, tools=[get_weather])

    async def main():
        first = await Runner.run(agent, "Weather in Rome?", conversation_id=thread.id)
        second = await Runner.run(agent, "Which city did I ask about?", conversation_id=thread.id)
        return first, second

    first, second = asyncio.run(main())
    assert ran == ["Rome"]
    assert first.final_output == "Sunny in Rome."
    assert second.final_output == "You asked about Rome."
    assert chat_messages(llm.requests()[2]) == [
        ("system", "Be brief."),
        ("user", "Weather in Rome?"),
        ("assistant", 'call:get_weather({"city": "Rome"})'),
        ("tool", "The weather in Rome is sunny."),
        ("assistant", "Sunny in Rome."),
        ("user", "Which city did I ask about?"),
    ]


def test_session_keeps_the_history(agents_client, llm):
    llm.script({"text": "San Francisco."}, {"text": "California."})
    agent = Agent(name="Assistant", instructions="Reply very concisely.", model=llm.model)
    session = SQLiteSession("conversation_123")

    async def main():
        await Runner.run(agent, "What city is the Golden Gate Bridge in?", session=session)
        return await Runner.run(agent, "What state is it in?", session=session)

    result = asyncio.run(main())
    assert result.final_output == "California."
    assert chat_messages(llm.requests()[1]) == [
        ("system", "Reply very concisely."),
        ("user", "What city is the Golden Gate Bridge in?"),
        ("assistant", "San Francisco."),
        ("user", "What state is it in?"),
    ]


def test_conversations_session_keeps_the_history_on_the_server(agents_client, client, llm):
    """`OpenAIConversationsSession`: the SDK makes a conversation on the server and keeps the
    run's items there (the Conversations API), then reads them back for the next turn."""
    from agents import OpenAIConversationsSession

    llm.script({"text": "San Francisco."}, {"text": "California."})
    agent = Agent(name="Assistant", instructions="Reply very concisely.", model=llm.model)

    async def main():
        session = OpenAIConversationsSession(openai_client=agents_client)
        await Runner.run(agent, "What city is the Golden Gate Bridge in?", session=session)
        result = await Runner.run(agent, "What state is it in?", session=session)
        return session, result

    session, result = asyncio.run(main())
    assert result.final_output == "California."
    assert chat_messages(llm.requests()[1]) == [
        ("system", "Reply very concisely."),
        ("user", "What city is the Golden Gate Bridge in?"),
        ("assistant", "San Francisco."),
        ("user", "What state is it in?"),
    ]
    conversation_id = asyncio.run(session._get_session_id())
    texts = [i.content[0].text for i in client.conversations.items.list(conversation_id, order="asc")]
    assert texts == ["What city is the Golden Gate Bridge in?", "San Francisco.",
                     "What state is it in?", "California."]


def test_text_and_a_call_in_one_turn_and_auto_previous_response_id(agents_client, llm):
    """A turn with text and a call; with `auto_previous_response_id` the next turn sends only
    the call's output and the previous response's id."""
    ran: list[str] = []

    @function_tool
    def get_weather(city: str) -> str:
        """Current weather of a city."""
        ran.append(city)
        return f"The weather in {city} is sunny."

    llm.script(
        {"text": "Let me check.", "tool_calls": [call("get_weather", {"city": "Oslo"})]},
        {"text": "Sunny in Oslo."},
    )
    agent = Agent(name="Weather", instructions="Be brief.", model=llm.model, tools=[get_weather])

    async def main():
        return await Runner.run(agent, "Weather in Oslo?", auto_previous_response_id=True)

    result = asyncio.run(main())
    assert ran == ["Oslo"]
    assert result.final_output == "Sunny in Oslo."
    assert [item.type for item in result.new_items] == [
        "message_output_item", "tool_call_item", "tool_call_output_item", "message_output_item",
    ]
    assert chat_messages(llm.requests()[1]) == [
        ("system", "Be brief."),
        ("user", "Weather in Oslo?"),
        ("assistant", "Let me check."),
        ("assistant", 'call:get_weather({"city": "Oslo"})'),
        ("tool", "The weather in Oslo is sunny."),
    ]


def test_agent_as_tool(agents_client, llm):
    spanish_agent = Agent(
        name="spanish_agent",
        instructions="You translate the user's message to Spanish",
        model=llm.model,
    )
    orchestrator = Agent(
        name="orchestrator_agent",
        instructions="You are a translation agent. You use the tools given to you to translate.",
        model=llm.model,
        tools=[
            spanish_agent.as_tool(
                tool_name="translate_to_spanish",
                tool_description="Translate the user's message to Spanish",
            )
        ],
    )
    llm.script(
        {"tool_calls": [call("translate_to_spanish", {"input": "Good morning"})]},
        {"text": "Buenos días"},
        {"text": "In Spanish: Buenos días."},
    )
    result = Runner.run_sync(orchestrator, "Say 'Good morning' in Spanish.")
    assert result.final_output == "In Spanish: Buenos días."
    assert result.last_agent is orchestrator
    orchestrating, translating, answering = llm.requests()
    assert chat_messages(translating) == [
        ("system", "You translate the user's message to Spanish"),
        ("user", "Good morning"),
    ]
    assert chat_messages(answering)[-1] == ("tool", "Buenos días")
