r"""Flower simulations recorded as traces (optional extra ``flower``: ``pip install
"symbolic_inversion[flower]"``, Flower's Message API, ``flwr>=1.40,<2``; run with 1.42).

:class:`RecordingStrategy` wraps a Flower strategy whose server arithmetic is FedAvg's
weighted mean (``flwr.serverapp.strategy.FedAvg``) and records, round by round,

* the global arrays the server sends to the clients (``configure_train``) and the
  aggregate it computes from their replies (``aggregate_train``): the **global trace**,
  a federated-rounds trace (``optimizer.local_steps`` = K, ``clients`` with each client's
  ``num-examples`` as its sample count and weight; :doc:`/federated`), what any observer
  of the global model sees;
* each client's returned arrays and ``num-examples`` (the server as observer):
  :meth:`RecordingStrategy.client_traces`, one trace per client and round (the global
  arrays sent, the client's arrays returned: one recorded step of K local steps on that
  client's samples alone).

The clients' side is not seen by the server, so it is *declared*: the network (a
PyTorch ``nn.Module`` read by :mod:`symbolic_inversion.torch`, or a
:class:`~symbolic_inversion.network.Network`), the loss, the clients' local optimizer
(full-batch ``gd``: ``{"name": "gd", "lr": "0.1"}`` or the ``torch.optim.SGD`` the
clients use) and K.  The arrays are read as state dicts
(:func:`~symbolic_inversion.torch.trace_from_state_dicts`, the toolkit's one converter
of PyTorch parameters): ``ArrayRecord(model.state_dict())`` is taken by the model's
parameter names, a list of numpy arrays (``ArrayRecord([W1, b1, W2, b2])``, weights
``(out, in)``) by order.

Refused with one :class:`~symbolic_inversion.errors.InputError` or
:class:`~symbolic_inversion.errors.NotSupportedError` line naming the problem: another
server arithmetic (FedProx with ``proximal_mu`` > 0, FedAdam, FedAdagrad, FedYogi,
FedAvgM with a server learning rate other than 1 or server momentum, FedMedian,
FedTrimmedAvg, Krum, Bulyan, QFedAvg, the differential-privacy wrappers, subclasses), a
reply without its weight (``num-examples``) or with an error, a round that trained
other clients than the first, a client whose ``num-examples`` changed, a round whose
arrays sent are not the last aggregate.

:func:`run_simulation_in_process` runs a ``ServerApp`` and a ``ClientApp`` in this
process, without Ray (``flwr.simulation.run_simulation`` needs the ``flwr[simulation]``
extra, Ray, and says so in flwr 1.42): every message's content goes through Flower's own
protobuf serialisation, as on the wire.  It uses four pieces of Flower that are not
its public API (``flwr.common.serde``, ``flwr.common.constant.SUPERLINK_NODE_ID``,
``flwr.supercore.run.Run``, ``flwr.supercore.task_identity.TaskIdentity``, the last
from flwr 1.40), all taken in one function that names what a Flower version lacks.

Examples (they need Flower and PyTorch, so they live in ``docs/flower.md`` and
``tests/test_flower.py``)::

    recorder = RecordingStrategy(FedAvg(fraction_evaluate=0.0), model,
                                 loss=nn.CrossEntropyLoss(),
                                 optimizer={"name": "gd", "lr": "0.5"}, local_steps=3)
    server = ServerApp()

    @server.main()
    def main(grid, context):
        recorder.start(grid=grid, initial_arrays=ArrayRecord(model.state_dict()),
                       num_rounds=3)

    run_simulation_in_process(server, client_app, num_supernodes=2)
    recover(recorder.trace())
"""

from .errors import InputError, NotSupportedError

__all__ = ["RecordingStrategy", "run_simulation_in_process", "in_process_grid"]

#: The flwr versions this module was tested with (``setup.cfg``'s ``flower`` extra).
TESTED = "1.42"


def _flwr():
    """The public Flower pieces the recorder needs (an InputError without Flower)."""
    try:
        import flwr  # noqa: F401
    except ImportError:
        raise InputError('flwr: Flower is not installed (pip install '
                         '"symbolic_inversion[flower]")') from None
    try:
        from flwr.app import ArrayRecord, Context, Message, RecordDict
        from flwr.serverapp import Grid
        from flwr.serverapp.strategy import FedAvg, Strategy
    except ImportError as error:
        raise NotSupportedError(f"flwr {_version()}: this Flower version lacks the Message "
                                f"API the recorder uses (flwr.app, flwr.serverapp; tested "
                                f"with flwr {TESTED}): {error}") from None
    return {"ArrayRecord": ArrayRecord, "Context": Context, "Message": Message,
            "RecordDict": RecordDict, "Grid": Grid, "FedAvg": FedAvg, "Strategy": Strategy}


def _version():
    try:
        from importlib.metadata import version
        return version("flwr")
    except Exception:  # noqa: BLE001 - only for a message
        return "?"


def _flwr_internals():
    """Flower's non-public pieces the in-process runner needs, in one place: the
    protobuf (de)serialisation of a RecordDict, the ``Run`` record, the process's task
    identity and the SuperLink's node id.  A Flower version without them is named in
    one line."""
    _flwr()
    try:
        from flwr.common.constant import SUPERLINK_NODE_ID
        from flwr.common.serde import recorddict_from_proto, recorddict_to_proto
        from flwr.supercore.run import Run
        from flwr.supercore.task_identity import TaskIdentity
        Run.create_empty  # noqa: B018 - checked here, used by in_process_grid
    except (ImportError, AttributeError) as error:
        raise NotSupportedError(
            f"flwr {_version()}: run_simulation_in_process uses flwr.common.serde, "
            f"flwr.common.constant.SUPERLINK_NODE_ID, flwr.supercore.run.Run and "
            f"flwr.supercore.task_identity (tested with flwr {TESTED}); this version "
            f"lacks one ({error})") from None
    return {"to_proto": recorddict_to_proto, "from_proto": recorddict_from_proto,
            "Run": Run, "TaskIdentity": TaskIdentity, "server_node": SUPERLINK_NODE_ID}


# -- the recorder ----------------------------------------------------------------------

def _check_strategy(strategy, flwr):
    """Refuse any server arithmetic but FedAvg's weighted mean (one line)."""
    name = type(strategy).__name__
    allowed = {"FedAvg", "FedAvgM", "FedProx"}
    module = type(strategy).__module__ or ""
    if name not in allowed or not module.startswith("flwr."):
        raise NotSupportedError(
            f"strategy: {name} is not supported: the recorder models FedAvg's weighted "
            f"mean of the clients' arrays (flwr.serverapp.strategy.FedAvg; FedAvgM with "
            f"server_learning_rate=1 and server_momentum=0; FedProx with proximal_mu=0)")
    if not isinstance(strategy, flwr["FedAvg"]):  # pragma: no cover - flwr's own classes
        raise NotSupportedError(f"strategy: {name} is not a FedAvg")
    if name == "FedAvgM":
        lr = getattr(strategy, "server_learning_rate", None)
        momentum = getattr(strategy, "server_momentum", None)
        if lr != 1.0:
            raise NotSupportedError(f"strategy: FedAvgM with server_learning_rate={lr} is "
                                    f"not supported (only 1, where it is FedAvg)")
        if momentum != 0.0:
            raise NotSupportedError(f"strategy: FedAvgM with server_momentum={momentum} "
                                    f"is not supported (only 0, where it is FedAvg)")
    if name == "FedProx":
        mu = getattr(strategy, "proximal_mu", None)
        if mu != 0.0:
            raise NotSupportedError(f"strategy: FedProx with proximal_mu={mu} is not "
                                    f"supported: its proximal term changes the clients' "
                                    f"loss (only 0, where it is FedAvg)")


def _arrays(record, field):
    """An ArrayRecord as an ordered dict of numpy arrays (copies)."""
    import numpy as np
    if record is None or not hasattr(record, "items"):
        raise InputError(f"{field}: expected an ArrayRecord, got {type(record).__name__}")
    out = {}
    for key, value in record.items():
        array = value.numpy() if hasattr(value, "numpy") else value
        out[str(key)] = np.array(array, copy=True)
    return out


def _same(a, b):
    import numpy as np
    return list(a) == list(b) and all(np.array_equal(a[k], b[k]) for k in a)


def _strategy_base():
    try:
        from flwr.serverapp.strategy import Strategy
    except ImportError:
        return object
    return Strategy


class RecordingStrategy(_strategy_base()):
    """A Flower strategy that records what the server sees (module docstring):
    Flower's ``start(grid=..., initial_arrays=..., num_rounds=...)`` runs it, then
    :meth:`trace`, :meth:`client_traces` and :meth:`write` give the traces.

    Parameters
    ==========

    strategy : flwr.serverapp.strategy.FedAvg
        The strategy the server runs (FedAvg, or FedAvgM/FedProx where they are FedAvg);
        every call is passed on to it.
    network : nn.Module or Network
        What the clients train: a PyTorch model (its chain of ``nn.Linear`` layers and
        activations, :mod:`symbolic_inversion.torch.model`) or a
        :class:`~symbolic_inversion.network.Network`.
    loss : loss module, toolkit loss name or Loss
        The clients' loss (``nn.CrossEntropyLoss()``, ``nn.MSELoss()``, ``"mse"``, ...).
    optimizer : dict, Optimizer or torch.optim.SGD
        The clients' local optimizer (full batch; its ``lr`` per local step).
    local_steps : int
        K, the clients' local steps per round.
    """

    def __init__(self, strategy, network, loss=None, optimizer=None, local_steps=1):
        flwr = _flwr()
        if loss is None:
            raise InputError("loss: give the clients' loss (e.g. nn.CrossEntropyLoss() or "
                             "'mse'); the recorder never assumes one")
        self._setup(strategy, network, loss, optimizer, local_steps, flwr)

    def _setup(self, strategy, network, loss, optimizer, local_steps, flwr):
        _check_strategy(strategy, flwr)
        self.strategy = strategy
        self.network = network
        self.loss = loss
        self.local_steps = local_steps
        self.optimizer = self._local_optimizer(optimizer, local_steps)
        self.weight_key = getattr(strategy, "weighted_by_key", "num-examples")
        self.sent = []         # global arrays sent, round by round
        self.aggregates = []   # the aggregate of every round
        self.replies = []      # per round: {node_id: (arrays, num_examples)}

    @staticmethod
    def _local_optimizer(optimizer, local_steps):
        from .optimizers import Optimizer
        if isinstance(local_steps, bool) or not isinstance(local_steps, int) or \
                local_steps < 1:
            raise InputError(f"local_steps: the clients' local optimizer steps per round, a "
                             f"positive integer; got {local_steps!r}")
        if optimizer is None:
            raise InputError('optimizer: give the clients\' local optimizer (e.g. '
                             '{"name": "gd", "lr": "0.1"} or their torch.optim.SGD)')
        if not isinstance(optimizer, (Optimizer, dict)):
            from .torch.optim import optimizer_of
            optimizer = optimizer_of(optimizer)
        optimizer = Optimizer.from_dict(optimizer) if isinstance(optimizer, dict) \
            else optimizer
        if optimizer.local_steps not in (1, local_steps):
            raise InputError(f"optimizer.local_steps: {optimizer.local_steps}, but "
                             f"local_steps={local_steps}")
        optimizer = optimizer.replace(local_steps=local_steps)
        if optimizer.minibatch:
            raise NotSupportedError("optimizer: minibatch local steps are not supported "
                                    "with clients (full-batch local steps are)")
        return optimizer

    # -- what Strategy.start calls -----------------------------------------------------

    def configure_train(self, server_round, arrays, config, grid):
        sent = _arrays(arrays, f"round {server_round}: the arrays sent")
        if self.aggregates and not _same(sent, self.aggregates[-1]):
            self._problem(f"round {server_round}: the arrays sent are not the aggregate "
                          f"of round {server_round - 1}")
        self.sent.append(sent)
        return self.strategy.configure_train(server_round, arrays, config, grid)

    def aggregate_train(self, server_round, replies):
        replies = list(replies)
        seen = {}
        for reply in replies:
            node = int(reply.metadata.src_node_id)
            where = f"round {server_round}, node {node}"
            if reply.has_error():
                self._problem(f"{where}: the reply is an error ({reply.error.reason}); "
                              f"every client's update enters the aggregate")
                continue
            content = reply.content
            records = list(content.array_records.values())
            metrics = list(content.metric_records.values())
            if len(records) != 1:
                self._problem(f"{where}: {len(records)} ArrayRecords in the reply; one is "
                              f"modelled")
                continue
            weight = metrics[0].get(self.weight_key) if metrics else None
            if weight is None:
                raise InputError(f"{where}: no {self.weight_key!r} in the reply's "
                                 f"MetricRecord: the client's weight (its number of "
                                 f"examples) is missing")
            seen[node] = (_arrays(records[0], f"{where}: arrays"), weight)
        self.replies.append(seen)
        arrays, metrics = self.strategy.aggregate_train(server_round, replies)
        self.aggregates.append(None if arrays is None else
                               _arrays(arrays, f"round {server_round}: the aggregate"))
        return arrays, metrics

    def configure_evaluate(self, server_round, arrays, config, grid):
        return self.strategy.configure_evaluate(server_round, arrays, config, grid)

    def aggregate_evaluate(self, server_round, replies):
        return self.strategy.aggregate_evaluate(server_round, replies)

    def summary(self):
        return self.strategy.summary()

    def __getattr__(self, name):  # the wrapped strategy's settings
        if name == "strategy":
            raise AttributeError(name)
        return getattr(self.strategy, name)

    # -- the traces -------------------------------------------------------------------

    _problems = ()

    def _problem(self, text):
        """A refusal found during the run: kept (Flower goes on), raised by
        :meth:`trace` (the first one)."""
        self._problems = list(self._problems) + [text]

    def _clients(self):
        """The nodes in trace order (by node id) and each one's number of examples,
        checked to be the same every round."""
        if self._problems:
            raise InputError(self._problems[0])
        if not self.replies:
            raise InputError("trace: no training round was recorded (run the strategy's "
                             "start() first)")
        if any(a is None for a in self.aggregates):
            raise InputError(f"round {self.aggregates.index(None) + 1}: no aggregate "
                             f"(no client replied)")
        nodes = sorted(self.replies[0])
        counts = {}
        for node in nodes:
            weight = self.replies[0][node][1]
            if isinstance(weight, bool) or float(weight) != int(weight) or weight < 1:
                raise InputError(f"round 1, node {node}: {self.weight_key!r} is "
                                 f"{weight!r}; the recorder reads it as the client's number "
                                 f"of samples (a positive integer)")
            counts[node] = int(weight)
        for r, round_replies in enumerate(self.replies[1:], start=2):
            if sorted(round_replies) != nodes:
                raise NotSupportedError(f"round {r}: trained nodes {sorted(round_replies)}, "
                                        f"round 1 trained {nodes}; a trace's clients are the "
                                        f"same every round (sample every node: "
                                        f"fraction_train=1.0)")
            for node in nodes:
                if round_replies[node][1] != counts[node]:
                    raise InputError(f"round {r}, node {node}: {self.weight_key!r} "
                                     f"{round_replies[node][1]!r}, was {counts[node]} in "
                                     f"round 1")
        return nodes, counts

    def trace(self):
        """The global trace: the arrays sent in round 1, then every round's aggregate
        (a :class:`~symbolic_inversion.trace.Trace` with ``optimizer.local_steps`` and
        ``clients``, client ``c`` the ``c``-th node by id; its sample indices follow the
        clients' order)."""
        from .torch.checkpoints import trace_from_state_dicts
        nodes, counts = self._clients()
        clients = [{"samples": counts[node], "weight": str(counts[node])} for node in nodes]
        extra = {"x-flower": {"strategy": type(self.strategy).__name__,
                              "node_ids": nodes, "rounds": len(self.aggregates)}}
        return trace_from_state_dicts([self.sent[0]] + self.aggregates, self.network,
                                      self.optimizer, sum(counts.values()), loss=self.loss,
                                      clients=clients, extra=extra)

    def client_traces(self):
        """The server as observer: ``traces[c][r]``, client ``c``'s round ``r + 1`` as a
        trace of one recorded step (the global arrays sent, the arrays it returned: K
        local steps on its own ``num-examples`` samples)."""
        from .torch.checkpoints import trace_from_state_dicts
        nodes, counts = self._clients()
        out = []
        for node in nodes:
            traces = []
            for r, sent in enumerate(self.sent):
                returned = self.replies[r][node][0]
                traces.append(trace_from_state_dicts(
                    [sent, returned], self.network, self.optimizer, counts[node],
                    loss=self.loss,
                    extra={"x-flower": {"node_id": node, "round": r + 1}}))
            out.append(traces)
        return out

    def write(self, directory):
        """Write ``global.json`` (:meth:`trace`) and ``client{c}_round{r}.json``
        (:meth:`client_traces`, from 1) into ``directory`` (created if missing);
        returns the paths written."""
        from pathlib import Path
        folder = Path(directory)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise InputError(f"{directory}: cannot create the folder ({error})") from None
        paths = [folder / "global.json"]
        self.trace().write(paths[0])
        for c, traces in enumerate(self.client_traces(), start=1):
            for r, trace in enumerate(traces, start=1):
                paths.append(folder / f"client{c}_round{r}.json")
                trace.write(paths[-1])
        return paths


# -- running a simulation in this process -------------------------------------------------

def in_process_grid(client_app, num_supernodes, node_configs=None, run_id=1):
    """A ``flwr.serverapp.Grid`` that delivers every message to a ``ClientApp`` in this
    process (one ``Context`` per node, kept across rounds, with ``node_config``
    ``{"partition-id": i, "num-partitions": N}`` as Flower's simulation gives).  Each
    message's content and each reply's is serialised to Flower's protobuf and back, as
    on the wire.  :func:`run_simulation_in_process` builds one and runs the server
    app on it."""
    flwr = _flwr()
    internals = _flwr_internals()
    to_proto, from_proto = internals["to_proto"], internals["from_proto"]
    Context, RecordDict, Message = flwr["Context"], flwr["RecordDict"], flwr["Message"]

    def wire(content):
        return from_proto(to_proto(content))

    class _Grid(flwr["Grid"]):
        def __init__(self):
            self.client_app = client_app
            self._run = None
            self.contexts = {}
            for i in range(num_supernodes):
                config = {"partition-id": i, "num-partitions": num_supernodes}
                if node_configs is not None:
                    config.update(node_configs[i])
                self.contexts[1000 + i] = Context(
                    run_id=run_id, node_id=1000 + i, node_config=config,
                    state=RecordDict(), run_config={})
            self._replies = {}
            self._count = 0

        def set_run(self, run):
            self._run = run

        @property
        def run(self):
            return self._run

        def create_message(self, content, message_type, dst_node_id, group_id,
                           ttl=None):
            return Message(content, dst_node_id, message_type, ttl=ttl,
                           group_id=group_id)

        def get_node_ids(self):
            return list(self.contexts)

        def push_messages(self, messages):
            ids = []
            for message in messages:
                self._count += 1
                mid = f"in-process-{self._count}"
                # as Flower's own InMemoryGrid: the link sets the message id
                message.metadata.__dict__["_message_id"] = mid
                node = message.metadata.dst_node_id
                if node not in self.contexts:
                    raise InputError(f"grid: no node {node} (nodes: "
                                     f"{sorted(self.contexts)})")
                incoming = Message(wire(message.content), node,
                                   message.metadata.message_type,
                                   group_id=message.metadata.group_id)
                incoming.metadata.__dict__.update(
                    {k: v for k, v in message.metadata.__dict__.items()})
                reply = self.client_app(incoming, self.contexts[node])
                if reply.has_content():
                    reply.content = wire(reply.content)
                self._replies[mid] = reply
                ids.append(mid)
            return ids

        def pull_messages(self, message_ids):
            return [self._replies.pop(i) for i in message_ids if i in self._replies]

        def send_and_receive(self, messages, *, timeout=None):
            return self.pull_messages(self.push_messages(messages))

    grid = _Grid()
    grid.set_run(internals["Run"].create_empty(run_id))
    return grid



def run_simulation_in_process(server_app, client_app, num_supernodes, run_config=None,
                              node_configs=None):
    """Run a Flower ``ServerApp`` with ``num_supernodes`` nodes of ``client_app`` in this
    process, one message at a time, without Ray (:func:`in_process_grid`).  The nodes'
    ``node_config`` holds ``partition-id`` (0 to N - 1) and ``num-partitions``, as
    Flower's simulation gives; ``node_configs`` (one dict per node) adds to it, and
    ``run_config`` is the server's ``context.run_config``.  Returns the grid (its
    ``contexts`` hold the nodes' state).

    >>> run_simulation_in_process(None, None, 0)
    Traceback (most recent call last):
    ...
    symbolic_inversion.errors.InputError: num_supernodes: expected a positive number of nodes, got 0
    """
    if isinstance(num_supernodes, bool) or not isinstance(num_supernodes, int) or \
            num_supernodes < 1:
        raise InputError(f"num_supernodes: expected a positive number of nodes, got "
                         f"{num_supernodes!r}")
    if node_configs is not None and len(node_configs) != num_supernodes:
        raise InputError(f"node_configs: {len(node_configs)} dicts for {num_supernodes} "
                         f"nodes")
    flwr = _flwr()
    internals = _flwr_internals()
    TaskIdentity = internals["TaskIdentity"]
    grid = in_process_grid(client_app, num_supernodes, node_configs)
    context = flwr["Context"](run_id=1, node_id=0, node_config={},
                              state=flwr["RecordDict"](), run_config=dict(run_config or {}))
    saved = {k: getattr(TaskIdentity, k, None) for k in ("_task_id", "_run_id", "_node_id")}
    TaskIdentity.task_id, TaskIdentity.run_id = 1, 1
    TaskIdentity.node_id = internals["server_node"]
    try:
        server_app(grid=grid, context=context)
    finally:
        for key, value in saved.items():
            setattr(TaskIdentity, key, value)
    return grid
