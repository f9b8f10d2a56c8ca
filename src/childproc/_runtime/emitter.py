"""Node's ``EventEmitter``, in Python: the base class of every object that emits events.

:class:`EventEmitter` is the base of ``ChildProcess``, the stdio streams and the IPC
channel.  It reproduces Node v20's ``events.EventEmitter``
closely enough that code ported from Node behaves the same, and the test-suite
(``tests/test_emitter.py``) runs the same scenario through a real ``node`` and
through this class and compares the traces.

Semantics (all Node's)
----------------------

* **Registration.**  :meth:`~EventEmitter.on` appends a listener, duplicates
  allowed; :meth:`~EventEmitter.prepend_listener` puts it first;
  :meth:`~EventEmitter.once` / :meth:`~EventEmitter.prepend_once_listener`
  register a wrapper that removes itself *before* calling the listener, so a
  listener that re-emits the same event does not run twice.
* **Delivery.**  :meth:`~EventEmitter.emit` calls the listeners in order, with the
  arguments given, over a snapshot taken when ``emit`` starts: a listener added
  during an emit does not run in that emit, and one removed during an emit
  still runs in it.  ``emit`` returns ``True`` iff the event had listeners.
* **Exceptions.**  An exception raised by a listener propagates out of ``emit``
  at once; the later listeners do not run.  (Whoever called ``emit`` -- usually
  childproc's event loop -- decides where it surfaces.)
* **Unhandled ``'error'``.**  ``emit('error', err)`` with no ``'error'`` listener
  raises ``err`` itself when it is an exception instance, otherwise an
  :class:`UnhandledErrorEvent` (``"Unhandled error. ('boom')"``) carrying the
  value as ``.context`` -- Node's ``ERR_UNHANDLED_ERROR``.
* **Removal.**  :meth:`~EventEmitter.off` removes the *most recently added*
  registration that matches (Node searches from the end), whether it was made
  with ``on`` or ``once`` -- a once-listener is removed by passing the original
  function.
* **Meta-events**, under Node's own names so ported code works unchanged:
  ``'newListener'(event, fn)`` is emitted *before* a listener is added (so a
  ``'newListener'`` listener that adds a listener for the same event gets its
  own in first), ``'removeListener'(event, fn)`` *after* one is removed.  Both
  receive the original function, never the once-wrapper.
* **Leak warning.**  Adding more than :meth:`~EventEmitter.get_max_listeners`
  listeners (10 by default, ``0``/``math.inf`` for no limit) to one event issues
  a :class:`MaxListenersExceededWarning` through :mod:`warnings`, once per event
  until the event's listeners drop back to one.

Matching is by ``==``, not identity: ``self.handler`` creates a new bound-method
object on every access, and ``off('exit', self.handler)`` must find the one given
to ``on('exit', self.handler)``.  For plain functions ``==`` is identity, as
Node's ``===``.

Deliberate differences from Node
--------------------------------

* Listeners are called with the event's arguments only; there is no ``this``.
  Bind what a listener needs (a bound method, a closure, ``functools.partial``).
* ``'removeListener'`` always receives the original function.  Node passes its
  internal ``bound onceWrapper`` when a once-listener is removed from an event
  that has several listeners, and the original otherwise; that accident is not
  copied.
* The text of :class:`UnhandledErrorEvent` shows the value with ``repr()``
  instead of ``util.inspect`` (same result for strings and numbers; ``None``
  where Node prints ``undefined``/``null``).  ``emit('error')`` with no argument
  behaves as ``emit('error', None)``.
* ``remove_all_listeners(None)`` means "every event" (Node distinguishes a
  missing argument from ``undefined``); ``None`` cannot be used as an event name
  for that one call.
* :meth:`~EventEmitter.event_names` gives events in first-registration order; JS
  objects list integer-like keys first and symbols last, which has no Python
  counterpart.
* Not implemented: ``captureRejections`` (a coroutine returned by a listener is
  not awaited here), ``errorMonitor``, and the module-level helpers
  (``events.once``, ``events.on``, ``getEventListeners``).

Threads: an emitter belongs to the thread that drives it (docs/architecture.md, "The loop"); its
methods take no lock.  Listener tuples are replaced, never mutated, so an
``emit`` in progress can never see a half-updated list.
"""

from __future__ import annotations

import math
import os
import sys
import warnings
from types import FrameType
TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds at import; forked children start faster without
    from collections.abc import Callable, Hashable
    from typing import Any, TypeVar, overload

    Listener = Callable[..., object]
    _F = TypeVar("_F", bound=Callable[..., Any])
    _E = TypeVar("_E", bound="EventEmitter")
else:

    def overload(fn: object) -> object:  # the stubs are for type checkers only
        return fn

from .._errors import ArgTypeError, ArgValueError, MaxListenersExceededWarning, UnhandledErrorEvent

__all__ = ["EventEmitter", "MaxListenersExceededWarning", "UnhandledErrorEvent"]


# Node's meta-event names, kept so that ported code (and ports of Node's own
# stream code) keep working.
NEW_LISTENER = "newListener"
REMOVE_LISTENER = "removeListener"


class _OnceWrapper:
    """What ``once`` registers: removes itself from ``target``, then calls ``listener``.

    Node's ``onceWrapper``.  The ``fired`` flag matters when the wrapper is still
    in the snapshot of an outer ``emit`` after a nested ``emit`` of the same event
    already consumed it: it must not run a second time.  ``raw_listeners()``
    exposes these objects; calling one behaves as in Node (remove, then call once).
    """

    __slots__ = ("target", "event", "listener", "fired")

    def __init__(self, target: EventEmitter, event: Hashable, listener: Listener) -> None:
        self.target = target
        self.event = event
        self.listener = listener
        self.fired = False

    def __call__(self, *args: Any) -> Any:
        if not self.fired:
            # Node's order: unregister first (which may emit 'removeListener'),
            # then mark as fired, then call.
            self.target.off(self.event, self)
            self.fired = True
            return self.listener(*args)
        return None

    def __repr__(self) -> str:
        return f"<once wrapper of {self.listener!r}>"


def _unwrap(entry: Listener) -> Listener:
    return entry.listener if type(entry) is _OnceWrapper else entry


def _describe(value: Any) -> str:
    """Node's ``Received ...`` tail, naming Python types (as childproc's other errors do)."""
    if value is None:
        return "Received None"
    text = repr(value)
    if len(text) > 28:
        text = text[:25] + "..."
    return f"Received type {type(value).__name__} ({text})"


def _check_listener(fn: Any) -> None:
    if not callable(fn):
        err = ArgTypeError(f'The "listener" argument must be of type function. {_describe(fn)}')
        raise err


class EventEmitter:
    """Node's ``EventEmitter``: named events, each with an ordered list of listeners.

    Subclasses must call ``super().__init__()``.  A subclass that needs to react
    to registrations (as Node's ``Readable`` starts flowing when a ``'data'``
    listener is added) overrides :meth:`on` and/or :meth:`off`: the aliases
    (:meth:`add_listener`, :meth:`remove_listener`), :meth:`once` and
    :meth:`remove_all_listeners` go through them, exactly as in Node.
    Likewise :meth:`prepend_once_listener` goes through :meth:`prepend_listener`.

    Events are usually ``str`` but may be any hashable value (Node allows
    symbols); listeners are any callables.
    """

    #: The limit for emitters that never called :meth:`set_max_listeners`
    #: (Node's ``EventEmitter.defaultMaxListeners``).  Read when a listener is
    #: added, so changing it affects existing emitters too.
    default_max_listeners: float = 10

    # Per-instance state is created lazily when first needed, so these class
    # attributes are the defaults: no limit set, no event warned about.
    _max_listeners: float | None = None
    _warned: set[Hashable] | None = None

    def __init__(self) -> None:
        # event -> tuple of listeners (once-listeners as _OnceWrapper).  Tuples
        # are replaced on every change and never mutated: emit() iterates the
        # tuple it found, which is Node's "copy of the array" without a copy.
        # An event with no listener has no key, so event_names() is the keys.
        self._events: dict[Hashable, tuple[Listener, ...]] = {}

    # ------------------------------------------------------------------
    # adding

    def _add_listener(self, event: Hashable, fn: Listener, prepend: bool) -> None:
        _check_listener(fn)
        events = self._events
        if NEW_LISTENER in events:
            # Before adding, as Node: a 'newListener' listener that registers
            # for the same event gets in ahead of the one being added.
            self.emit(NEW_LISTENER, event, _unwrap(fn))
        existing = events.get(event)
        if existing is None:
            events[event] = (fn,)
            return
        current = (fn, *existing) if prepend else (*existing, fn)
        events[event] = current
        limit = self.get_max_listeners()
        if limit > 0 and len(current) > limit and (self._warned is None or event not in self._warned):
            if self._warned is None:
                self._warned = set()
            self._warned.add(event)
            message = (
                f"Possible EventEmitter memory leak detected. {len(current)} {event} listeners "
                f"added to [{type(self).__name__}]. MaxListeners is {_number(limit)}. "
                "Use emitter.set_max_listeners() to increase limit"
            )
            warnings.warn(
                MaxListenersExceededWarning(message, self, event, len(current)), stacklevel=_caller_stacklevel()
            )

    @overload
    def on(self, event: Hashable, fn: None = None) -> Callable[[_F], _F]: ...
    @overload
    def on(self: _E, event: Hashable, fn: Listener) -> _E: ...

    def on(self, event: Hashable, fn: Listener | None = None) -> Any:
        """Add ``fn`` at the end of ``event``'s listeners; return the emitter (for chaining).

        With only the event name, return a decorator that registers the
        function and gives it back unchanged::

            @child.on('exit')
            def exited(code, signal): ...

        The same function may be added several times; it then runs once per
        registration.  ``'newListener'`` is emitted before the addition.
        """
        if fn is None:
            def register(func: _F) -> _F:
                self.on(event, func)
                return func

            return register
        self._add_listener(event, fn, False)
        return self

    def add_listener(self: _E, event: Hashable, fn: Listener) -> _E:
        """Alias of :meth:`on` (Node's ``addListener``); goes through an overridden ``on``.

        Unlike ``on``, it has no decorator form: ``fn`` is required.
        """
        _check_listener(fn)  # None must not fall into on()'s decorator form
        self.on(event, fn)
        return self

    def prepend_listener(self: _E, event: Hashable, fn: Listener) -> _E:
        """Add ``fn`` at the *start* of ``event``'s listeners; return the emitter."""
        self._add_listener(event, fn, True)
        return self

    @overload
    def once(self, event: Hashable, fn: None = None) -> Callable[[_F], _F]: ...
    @overload
    def once(self: _E, event: Hashable, fn: Listener) -> _E: ...

    def once(self, event: Hashable, fn: Listener | None = None) -> Any:
        """Add a listener that runs at most once; return the emitter (or a decorator).

        The registration is removed *before* ``fn`` is called.  ``listeners()``
        and ``'newListener'``/``'removeListener'`` show ``fn`` itself, and
        ``off(event, fn)`` removes it before it fires.
        """
        if fn is None:
            def register(func: _F) -> _F:
                self.once(event, func)
                return func

            return register
        _check_listener(fn)
        # Through self.on, as Node, so a subclass's override of on() sees it.
        self.on(event, _OnceWrapper(self, event, fn))
        return self

    def prepend_once_listener(self: _E, event: Hashable, fn: Listener) -> _E:
        """Like :meth:`once`, but the listener goes first."""
        _check_listener(fn)
        self.prepend_listener(event, _OnceWrapper(self, event, fn))
        return self

    # ------------------------------------------------------------------
    # removing

    def off(self: _E, event: Hashable, fn: Listener) -> _E:
        """Remove the most recently added registration of ``fn`` for ``event``; return the emitter.

        Only one registration goes, even if ``fn`` was added several times, and
        it is the *last* one (Node searches from the end).  A once-listener is
        found by its original function.  Nothing happens if ``fn`` is not
        registered.  ``'removeListener'(event, fn)`` is emitted afterwards, if
        any ``'removeListener'`` listener is (still) registered.  An emit in
        progress still calls the removed listener: it works on a snapshot.
        """
        _check_listener(fn)
        events = self._events
        existing = events.get(event)
        if existing is None:
            return self
        for i in range(len(existing) - 1, -1, -1):
            entry = existing[i]
            if entry == fn or (type(entry) is _OnceWrapper and entry.listener == fn):
                break
        else:
            return self
        if len(existing) == 1:
            del events[event]
        else:
            events[event] = existing[:i] + existing[i + 1 :]
        if self._warned and len(existing) <= 2:
            # Node keeps the "warned" flag on the listener array, which is
            # dropped when one listener is left: the warning can come again.
            self._warned.discard(event)
        if REMOVE_LISTENER in events:
            self.emit(REMOVE_LISTENER, event, _unwrap(entry))
        return self

    def remove_listener(self: _E, event: Hashable, fn: Listener) -> _E:
        """Alias of :meth:`off` (Node's ``removeListener``); goes through an overridden ``off``."""
        self.off(event, fn)
        return self

    def remove_all_listeners(self: _E, event: Hashable | None = None) -> _E:
        """Remove every listener of ``event``, or of every event when ``event`` is None.

        When ``'removeListener'`` listeners exist, each removal is reported, in
        Node's order: per event from the last listener to the first, the events
        in registration order, and the ``'removeListener'`` listeners themselves
        last.
        """
        events = self._events
        if REMOVE_LISTENER not in events:
            # Nobody to tell: drop the lists wholesale.
            if event is None:
                events.clear()
            else:
                events.pop(event, None)
            self._warned = None if event is None or not self._warned else self._warned - {event}
            return self
        if event is None:
            for key in list(events):
                if key != REMOVE_LISTENER:
                    self.remove_all_listeners(key)
            self.remove_all_listeners(REMOVE_LISTENER)
            # Node resets its table here, so whatever 'removeListener'
            # listeners added along the way is gone too.
            events.clear()
            self._warned = None
            return self
        existing = events.get(event)
        if existing is not None:
            for entry in reversed(existing):
                self.off(event, entry)
        return self

    # ------------------------------------------------------------------
    # emitting

    def emit(self, event: Hashable, *args: Any) -> bool:
        """Call ``event``'s listeners in order with ``args``; return True iff there were any.

        The listeners called are those registered when ``emit`` starts.  An
        exception from a listener propagates at once (later listeners do not
        run).  ``emit('error', value)`` without an ``'error'`` listener raises
        ``value`` if it is an exception instance, else
        :class:`UnhandledErrorEvent` with ``.context = value``.
        """
        # Hot path ('data' on streams): one dict lookup and a call.  The tuple
        # is never mutated, so iterating it is Node's iteration over a copy,
        # without the copy; a lone listener is called directly, which also
        # saves the tuple iterator (about 10% of the emit cost).
        listeners = self._events.get(event)
        if listeners is None:
            if event == "error":
                err = args[0] if args else None
                if isinstance(err, BaseException):
                    raise err
                raise UnhandledErrorEvent(err)
            return False
        if len(listeners) == 1:
            listeners[0](*args)
        else:
            for fn in listeners:
                fn(*args)
        return True

    # ------------------------------------------------------------------
    # introspection

    def listeners(self, event: Hashable) -> list[Listener]:
        """A new list of ``event``'s listeners, once-listeners as their original functions."""
        return [_unwrap(entry) for entry in self._events.get(event, ())]

    def raw_listeners(self, event: Hashable) -> list[Listener]:
        """A new list of ``event``'s listeners as registered, once-wrappers included.

        Calling a once-wrapper from this list removes it and calls its listener,
        as in Node; its ``.listener`` attribute is the original function.
        """
        return list(self._events.get(event, ()))

    def listener_count(self, event: Hashable, fn: Listener | None = None) -> int:
        """How many listeners ``event`` has; with ``fn``, how many registrations of ``fn``."""
        existing = self._events.get(event, ())
        if fn is None:
            return len(existing)
        return sum(1 for entry in existing if entry == fn or (type(entry) is _OnceWrapper and entry.listener == fn))

    def event_names(self) -> list[Hashable]:
        """The events that have listeners, in the order they got their first one."""
        return list(self._events)

    def set_max_listeners(self: _E, n: float) -> _E:
        """Set the per-event listener count above which a leak warning is issued.

        ``0`` or ``math.inf`` means no limit.  Raises ``TypeError`` for a
        non-number and ``ValueError`` (``.code == 'ERR_OUT_OF_RANGE'``) for a
        negative number or NaN, with Node's messages.
        """
        if isinstance(n, bool) or not isinstance(n, (int, float)):
            err: Exception = ArgTypeError(f'The "set_max_listeners" argument must be of type number. {_describe(n)}')
            raise err
        if math.isnan(n) or n < 0:
            err = ArgValueError(
                f'The value of "set_max_listeners" is out of range. It must be >= 0. Received {n!r}',
                "ERR_OUT_OF_RANGE",
            )
            raise err
        self._max_listeners = n
        return self

    def get_max_listeners(self) -> float:
        """The limit set by :meth:`set_max_listeners`, else :attr:`default_max_listeners`."""
        limit = self._max_listeners
        return type(self).default_max_listeners if limit is None else limit


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def _caller_stacklevel() -> int:
    """The ``stacklevel`` that makes a warning point at the first frame outside childproc.

    Listeners are added through varying depths (``on``, ``once`` -> ``on``, a
    subclass's ``on`` override, decorators), so a fixed ``stacklevel`` would
    point into the library; the user wants the line that added the listener.
    Only the (rare) warning path pays for this walk.
    """
    frame: FrameType | None = sys._getframe(1)
    level = 1  # as seen from warnings.warn called in our caller
    while frame is not None and os.path.dirname(os.path.abspath(frame.f_code.co_filename)) == _PACKAGE_DIR:
        frame = frame.f_back
        level += 1
    return level


def _number(value: float) -> str:
    """Show a limit as Node does: ``10``, ``1.5``, ``Infinity``."""
    if value == math.inf:
        return "Infinity"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
