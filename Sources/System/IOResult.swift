/// The outcome of a non-blocking call: it either did something or would have blocked.
public enum IOResult<Value> {
    case done(Value)
    case wouldBlock
}

extension IOResult: Equatable where Value: Equatable {}
